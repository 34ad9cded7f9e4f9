"""Turns one message row into an email or a text: context, rendering, compliance headers.

The render context is the whole surface a template sees: the allow-listed contact fields, the
clinic's public details, and link helpers that only reach registered destinations.

A contact is written to in their language: each step is read from the sequence's folder for that
language when the step is translated, else in English (TemplateRenderer.language_folder), and
the footer's reason follows (Sequence.reason_in). Texts go out as `[sms] smart_encoding` says
(templates.sms_segments.smart_encode), counted as sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from campaigns.definitions import Sequence, Step
from core.errors import NurtureError
from core.languages import language_of
from core.settings import Settings
from providers.base import OutgoingEmail, OutgoingSms
from storage.models import Channel
from templates.audit import inspect_template
from templates.links import LinkSigner
from templates.renderer import (
    SMS_PART,
    RenderedEmail,
    RenderedSms,
    TemplateRenderer,
    TemplateRenderError,
    contact_view,
)
from templates.sms_segments import smart_encode, sms_info


class UnknownDestination(NurtureError):
    """A template asked for a link target that is not registered (no open redirect)."""


def contact_language(contact: Any) -> str:
    """The language a contact (a model or a mapping) reads us in; English when unknown."""
    if isinstance(contact, Mapping):
        return language_of(contact.get("language"))
    return language_of(getattr(contact, "language", None))


@dataclass(frozen=True)
class Composer:
    settings: Settings
    renderer: TemplateRenderer
    signer: LinkSigner
    #: text template → the variables it (or a template it reaches) reads; None: any of them
    _text_reads: dict[str, frozenset[str] | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def destinations(self, sequence: Sequence) -> dict[str, str]:
        return {**sequence.link_destinations, **self.settings.clinic.destinations()}

    def folder(self, sequence: Sequence, step: Step, language: str) -> str:
        """Where this step's templates are read for a contact in `language`."""
        return self.renderer.language_folder(
            sequence.template_folder, step.template, step.channel, language
        )

    def context(
        self, sequence: Sequence, step: Step, contact: Any, message_id: int, contact_id: int
    ) -> dict[str, Any]:
        allowed = self.destinations(sequence)
        signed: dict[str, str] = {}  # the HTML and text parts share one signature per target

        def link(destination: str = "booking") -> str:
            if destination not in allowed:
                raise UnknownDestination(f"link destination {destination!r} is not registered")
            if destination not in signed:
                signed[destination] = self.signer.click_url(message_id, destination)
            return signed[destination]

        clinic = self.settings.clinic
        sms = step.channel == "sms"
        language = contact_language(contact)
        folder = self.folder(sequence, step, language)

        def signed_if_read(variable: str, sign: Callable[[], str]) -> str:
            """An email always carries both links; a text only those its template prints."""
            if sms and not self._text_reads_variable(f"{folder}/{step.template}", variable):
                return ""
            return sign()

        return {
            "contact": contact_view(contact, sequence.custom_fields),
            "clinic": {
                "name": clinic.name,
                "phone": clinic.phone_display,
                "postal_address": clinic.postal_address,
                "website": clinic.website,
            },
            "booking_link": link,
            "link": link,
            "unsubscribe_url": signed_if_read(
                "unsubscribe_url",
                lambda: self.signer.unsubscribe_url(contact_id, step.channel, message_id),
            ),
            "preferences_url": signed_if_read(
                "preferences_url", lambda: self.signer.preferences_url(contact_id)
            ),
            # the footer's reason in the language the step is read in (English when it falls back)
            "reason": sequence.reason_in(language if folder != sequence.template_folder else ""),
            "step": step.name,
        }

    def _text_reads_variable(self, template: str, variable: str) -> bool:
        """Whether a text's template may print `variable`, by the audit's static reading (once
        per template). A template it cannot read ahead (named at render time, missing, broken)
        may print anything: everything is signed, and rendering reports what is wrong."""
        name = f"{template}.{SMS_PART}"
        if name not in self._text_reads:
            try:
                read = frozenset(inspect_template(self.renderer, name).variables)
            except TemplateRenderError:
                read = None
            self._text_reads[name] = read
        read = self._text_reads[name]
        return read is None or variable in read

    def render(
        self, sequence: Sequence, step: Step, contact: Any, message_id: int, contact_id: int
    ) -> RenderedEmail | RenderedSms:
        context = self.context(sequence, step, contact, message_id, contact_id)
        folder = self.folder(sequence, step, contact_language(contact))
        if step.channel == "email":
            return self.renderer.render_email(folder, step.template, context)
        return self.as_sent(self.renderer.render_sms(folder, step.template, context))

    def as_sent(self, rendered: RenderedSms) -> RenderedSms:
        """The text as it goes out: transliterated when `[sms] smart_encoding` is on, and
        counted as such (a preview, validation and the send all see the same segments)."""
        if not self.settings.sms.smart_encoding:
            return rendered
        body = smart_encode(rendered.body)
        return rendered if body is rendered.body else RenderedSms(body, sms_info(body))

    def compose(
        self,
        sequence: Sequence,
        step: Step,
        contact: Any,
        *,
        message_id: int,
        contact_id: int,
        to: str,
        campaign: str,
    ) -> OutgoingEmail | OutgoingSms:
        """Render and wrap one message; each signed URL is computed once (the dispatcher's hot
        path: HMAC signing was half the cost of an email)."""
        context = self.context(sequence, step, contact, message_id, contact_id)
        folder = self.folder(sequence, step, contact_language(contact))
        if step.channel == "email":
            rendered = self.renderer.render_email(folder, step.template, context)
            return self.email(
                rendered,
                message_id=message_id,
                contact_id=contact_id,
                to=to,
                campaign=campaign,
                one_click=context["unsubscribe_url"],
            )
        text = self.as_sent(self.renderer.render_sms(folder, step.template, context))
        return self.sms(text, message_id=message_id, to=to)

    def email(
        self,
        rendered: RenderedEmail,
        *,
        message_id: int,
        contact_id: int,
        to: str,
        campaign: str,
        one_click: str | None = None,
    ) -> OutgoingEmail:
        one_click = one_click or self.signer.unsubscribe_url(contact_id, Channel.EMAIL, message_id)
        targets = [f"<{one_click}>"]
        if self.settings.email.unsubscribe_mailto:
            targets.append(f"<mailto:{self.settings.email.unsubscribe_mailto}?subject=unsubscribe>")
        return OutgoingEmail(
            message_id=message_id,
            to=to,
            from_email=self.settings.email.from_address,
            from_name=self.settings.email.from_name,
            reply_to=self.settings.email.reply_to,
            subject=rendered.subject,
            html=rendered.html,
            text=rendered.text,
            headers={
                "List-Unsubscribe": ", ".join(targets),
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",  # RFC 8058
            },
            custom_args={"nurture_message_id": str(message_id)},
            categories=("nurture", campaign),
        )

    def sms(self, rendered: RenderedSms, *, message_id: int, to: str) -> OutgoingSms:
        base = self.settings.web.public_base_url
        return OutgoingSms(
            message_id=message_id,
            to=to,
            body=rendered.body,
            from_number=self.settings.sms.from_number,
            messaging_service_sid=self.settings.sms.messaging_service_sid,
            status_callback=f"{base}/webhooks/twilio/status?m={message_id}",
            segments=rendered.info.segments,
        )
