"""The editor's previews and "send me a test", rendered from the draft on the page.

Both render through the composer the send path uses (campaigns.validation.sample_composer over
the draft's files), with links signed by the validation-only key: a click in a preview or a
test records nothing and unsubscribes nobody. A contact for a preview is chosen by name or email
(contacts.search), never by an internal id; without one, the typical sample contact is used.

A test goes to the signed-in staff member: an email to their login address, a text to the
mobile number on their account (staff_users.phone), which only `nurture users phone EMAIL
NUMBER` sets: a number typed on this page could be anyone's, and draft text would go to it.
A test text is refused for a suppressed number and outside texting hours in the clinic's time
zone, by the rule a staff answer obeys (scheduler.staff_replies.texting_refusal). It goes
through the configured provider (WebServices.direct_email / direct_sms, as a staff answer
does), its subject or text starts with "[TEST]", and it is no campaign message: no row in
`messages`, so no report counts it. Ten tests a minute per staff member at most, counted from
the events table (`editor_test`), so every worker process shares one count.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.drafts import Draft, DraftReport, build_sequence, draft_renderer
from campaigns.validation import SAMPLE_CONTACTS, SAMPLE_ID, sample_composer
from contacts.search import Search, search_contacts
from core.errors import InputError, NurtureError
from core.languages import DEFAULT_LANGUAGE, LANGUAGES
from core.redact import mask_email, mask_phone
from providers.base import OutgoingEmail, OutgoingSms, ProviderError
from scheduler.staff_replies import texting_refusal
from storage.db import transaction
from storage.models import Event, StaffUser
from templates.renderer import RenderedEmail, RenderedSms
from web.admin.editor_pages import DraftField, answer, read_draft
from web.admin.previews import EMAIL_FRAME_CSP
from web.admin.session import Staff, StaffEditor, StaffPoster
from web.services import WebServices

log = logging.getLogger(__name__)
router = APIRouter()

TESTS_PER_MINUTE = 10
#: The event each test leaves (no contact, no campaign): the rate limit counts these.
TEST_SENT = "editor_test"
TEST_MARK = "[TEST]"
StepIndex = Annotated[int, Form(ge=0, le=100)]
Language = Annotated[str, Form(max_length=5)]
ContactWords = Annotated[str, Form(max_length=200)]


@dataclass(frozen=True)
class Rendered:
    message: RenderedEmail | RenderedSms | None
    contact_label: str
    error: str = ""


def _contact(session: Session, words: str, draft: Draft, language: str) -> tuple[Any, str]:
    """The contact named by `words` (a name or an email), else the typical sample, as the
    mapping the composer reads, in the language being previewed."""
    words = words.strip()
    if words:
        found, _ = search_contacts(session, Search(text=words, limit=1))
        if found:
            person = found[0]
            return (
                {
                    "first_name": person.first_name,
                    "last_name": person.last_name,
                    "custom_fields": person.custom_fields or {},
                    "language": language,
                },
                f"{person.first_name} {person.last_name}".strip() or mask_email(person.email),
            )
    sample = SAMPLE_CONTACTS[0]
    label = f"a sample contact ({sample.first_name} {sample.last_name})"
    if words:
        label = f"nobody matches {words!r}: " + label
    return sample.as_contact(draft.custom_fields, language), label


def render_step(
    nurture: WebServices, draft: Draft, index: int, language: str, words: str
) -> Rendered:
    """One step of the draft in `language`, for the chosen or the sample contact."""
    report = DraftReport()
    sequence = build_sequence(draft, report)
    if sequence is None:
        return Rendered(None, "", report.problems[0].message if report.problems else "")
    if not 0 <= index < len(sequence.steps):
        return Rendered(None, "", "There is no such step.")
    language = language if language in LANGUAGES else DEFAULT_LANGUAGE
    with nurture.sessions() as session:
        contact, label = _contact(session, words, draft, language)
    with draft_renderer(draft) as renderer:
        composer = sample_composer(nurture.settings, renderer)
        step = sequence.steps[index]
        try:
            message = composer.render(sequence, step, contact, SAMPLE_ID, SAMPLE_ID)
        except NurtureError as exc:
            return Rendered(None, label, str(exc))
    return Rendered(message, label)


def _as_json(rendered: Rendered) -> dict[str, Any]:
    data: dict[str, Any] = {"contact": rendered.contact_label, "error": rendered.error}
    message = rendered.message
    if isinstance(message, RenderedEmail):
        data.update(subject=message.subject, text=message.text)
    elif isinstance(message, RenderedSms):
        info = message.info
        data.update(text=message.body, encoding=info.encoding, segments=info.segments)
    return data


@router.post("/editor/preview")
def preview(
    request: Request,
    staff: StaffPoster,
    draft: DraftField = "{}",
    step: StepIndex = 0,
    language: Language = DEFAULT_LANGUAGE,
    contact: ContactWords = "",
) -> Response:
    """Subject and plain text (an email) or the text as sent, as JSON for the page."""
    nurture: WebServices = request.app.state.nurture
    rendered = render_step(nurture, read_draft(nurture, draft), step, language, contact)
    return answer(_as_json(rendered))


@router.post("/editor/preview.html")
def preview_html(
    request: Request,
    staff: StaffPoster,
    draft: DraftField = "{}",
    step: StepIndex = 0,
    language: Language = DEFAULT_LANGUAGE,
    contact: ContactWords = "",
) -> Response:
    """The email's HTML, posted into the preview's sandboxed frame (desktop or mobile width):
    its own CSP runs no script, as the campaign preview's frame."""
    nurture: WebServices = request.app.state.nurture
    rendered = render_step(nurture, read_draft(nurture, draft), step, language, contact)
    message = rendered.message
    if isinstance(message, RenderedEmail):
        body = message.html
    elif isinstance(message, RenderedSms):
        body = f"<p>{escape(message.body)}</p>"
    else:
        body = f"<p>{escape(rendered.error)}</p>"
    return HTMLResponse(
        body,
        headers={
            "Content-Security-Policy": EMAIL_FRAME_CSP,
            "X-Frame-Options": "SAMEORIGIN",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


def allowed_now(nurture: WebServices, staff: Staff) -> bool:
    """At most TESTS_PER_MINUTE tests a minute per staff member, by the app's clock, counted
    from the events table: every worker process sees one count, and a restart resets none.
    The staff member's row is locked first (FOR UPDATE on PostgreSQL; SQLite has one writer),
    so two requests at once are counted one after the other. A test allowed is recorded here."""
    now = nurture.clock()
    with transaction(nurture.sessions) as session:
        session.get_one(StaffUser, staff.id, with_for_update=True)
        recent = session.scalar(
            select(func.count())
            .select_from(Event)
            .where(
                Event.kind == TEST_SENT,
                Event.occurred_at > now - timedelta(minutes=1),
                Event.data["by"].as_integer() == staff.id,
            )
        )
        if (recent or 0) >= TESTS_PER_MINUTE:
            return False
        session.add(Event(kind=TEST_SENT, occurred_at=now, data={"by": staff.id}))
    return True


def test_message(
    nurture: WebServices, rendered: RenderedEmail | RenderedSms, to: str
) -> OutgoingEmail | OutgoingSms:
    """The test as the provider gets it: marked, with a message id no campaign message has
    (negative, from the clock), so no status or report reaches a campaign's row."""
    settings = nurture.settings
    message_id = -int(nurture.clock().timestamp() * 1000)
    if isinstance(rendered, RenderedEmail):
        return OutgoingEmail(
            message_id=message_id,
            to=to,
            from_email=settings.email.from_address,
            from_name=settings.email.from_name,
            reply_to=settings.email.reply_to,
            subject=f"{TEST_MARK} {rendered.subject}",
            html=rendered.html,
            text=rendered.text,
            headers={"X-Nurture-Test": "yes"},
            custom_args={"nurture_test": "yes"},
            categories=("nurture-test",),
        )
    return OutgoingSms(
        message_id=message_id,
        to=to,
        body=f"{TEST_MARK} {rendered.body}",
        from_number=settings.sms.from_number,
        messaging_service_sid=settings.sms.messaging_service_sid,
        segments=rendered.info.segments,
    )


PHONE_HOW = (
    "Test texts go to the mobile number on your account, which an owner sets with "
    "`nurture users phone YOUR-EMAIL NUMBER` (never typed here: a number on this page could "
    "be anyone's)."
)


def own_phone(nurture: WebServices, staff: Staff) -> str:
    """The staff member's own mobile number, when a test text may go to it now: InputError,
    in words for the page, when there is none, it is suppressed, or it is outside texting hours
    in the clinic's time zone."""
    settings = nurture.settings
    with nurture.sessions() as session:
        user = session.get_one(StaffUser, staff.id)
        if not user.phone:
            raise InputError(f"Your account has no mobile number. {PHONE_HOW}")
        why = texting_refusal(
            session,
            settings,
            user.phone,
            settings.clinic.default_timezone,
            now=nurture.clock(),
            whose="the clinic's",
        )
        if why is not None:
            raise InputError(f"No test sent: {why}.")
        return user.phone


def refused(why: str, status_code: int) -> Response:
    return answer({"sent": False, "error": why}, status_code)


@router.post("/editor/test")
async def send_test(
    request: Request,
    staff: StaffEditor,
    draft: DraftField = "{}",
    step: StepIndex = 0,
    language: Language = DEFAULT_LANGUAGE,
    contact: ContactWords = "",
) -> Response:
    nurture: WebServices = request.app.state.nurture
    parsed = read_draft(nurture, draft)
    rendered = await run_in_threadpool(render_step, nurture, parsed, step, language, contact)
    if rendered.message is None:
        return refused(f"This step cannot be sent: {rendered.error}", 422)
    if isinstance(rendered.message, RenderedSms):
        try:
            to = await run_in_threadpool(own_phone, nurture, staff)
        except InputError as exc:
            return refused(str(exc), 422)
        shown = mask_phone(to)
    else:
        to, shown = staff.email, mask_email(staff.email)
    if not await run_in_threadpool(allowed_now, nurture, staff):
        return refused("That is ten tests this minute: wait a moment.", 429)
    return await _deliver(nurture, test_message(nurture, rendered.message, to), shown, staff)


async def _deliver(
    nurture: WebServices, message: OutgoingEmail | OutgoingSms, shown: str, staff: Staff
) -> Response:
    try:
        if isinstance(message, OutgoingEmail):
            email = nurture.direct_email()
            try:
                await email.send(message)
            finally:
                await email.aclose()
        else:
            sms = nurture.direct_sms()
            try:
                await sms.send(message)
            finally:
                await sms.aclose()
    except ProviderError as exc:
        log.warning("a test message was not sent: %s", exc)
        return refused(f"The provider refused the test: {exc}", 502)
    log.info("test message sent by staff %s to %s", staff.id, shown)
    return answer({"sent": True, "message": f"Test sent to {shown}, marked {TEST_MARK}."})
