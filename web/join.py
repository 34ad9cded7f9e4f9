"""The hosted sign-up page (/join) and its email confirmation link (/join/confirm/{token}).

Double opt-in (contacts.signup): the form creates or updates the contact with nothing opted in,
then sends a confirmation email with a signed link and, when the SMS box was ticked, a text
asking "Reply YES to confirm" (web.text_join takes the YES). The SMS box is never ticked for
the person, and the TCPA disclosure beside it is the clinic's, word for word, from settings
(`clinic.sms_disclosure`, `clinic.sms_disclosure_es`): the ledger keeps the exact text shown,
because prior express written consent (47 CFR 64.1200(f)(9)) is consent to that text.
Bots and floods are kept off by web.join_guard.

The confirmation link's GET shows a button and only its POST confirms: mail scanners and link
previews follow links (as for unsubscribe links, web.unsubscribe), and a consent a scanner
gave is no consent. Pages are in English and Spanish, with the recipient pages' `?lang=` switch.

The clinic's website embeds the form as an iframe of `/join?embed=1` (the snippet on
/admin/sign-up-form): the form stays on our origin with its signed token, honeypot and exact
disclosure, and posts without cookies. Only those pages may be framed, and only by the origins
in `signup.embed_origins` (default: clinic.website's), through CSP `frame-ancestors`; every
other page keeps refusing frames (web.access_log).
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from contacts.intake import IntakeConflict
from contacts.signup import FormEvidence, FormSignup, confirm_email, sign_up
from core.errors import InputError
from core.languages import SPANISH
from core.redact import mask_email
from core.settings import Settings
from providers.base import EmailProvider, OutgoingEmail, OutgoingSms, ProviderError, SmsProvider
from storage.db import transaction
from templates.sms_segments import smart_encode
from web.join_guard import AddressLimiter, Refusal, SignupTokens
from web.pages import page, page_language, with_language
from web.proxy import client_address
from web.services import WebServices

log = logging.getLogger("nurture.web.join")
HONEYPOT = "website"  # a field people never see (hidden by CSS, skipped by screen readers)
MAX_FIELD = 320

#: What the form says about email, word for word: the evidence records the text shown.
EMAIL_STATEMENT = {
    "en": "Send me back-pain tips and news from {clinic} by email. I can unsubscribe at any time.",
    SPANISH: (
        "Envíenme consejos y novedades de {clinic} sobre el dolor de espalda por correo "
        "electrónico. Puedo cancelar la suscripción en cualquier momento."
    ),
}
CONFIRM_EMAIL = {
    "en": (
        "Please confirm your email address",
        "Thanks for signing up with {clinic}. Please confirm your email address to start "
        "receiving our back-pain tips:",
        "Confirm my email address",
        "If you did not sign up, ignore this email: you will not hear from us again.",
    ),
    SPANISH: (
        "Confirme su correo electrónico",
        "Gracias por inscribirse con {clinic}. Confirme su correo electrónico para empezar a "
        "recibir nuestros consejos para el dolor de espalda:",
        "Confirmar mi correo electrónico",
        "Si usted no se inscribió, ignore este correo: no volverá a saber de nosotros.",
    ),
}


def sms_disclosure(settings: Settings, language: str) -> str:
    clinic = settings.clinic
    return clinic.sms_disclosure_es if language == SPANISH else clinic.sms_disclosure


def confirm_prompt(settings: Settings, language: str) -> str:
    """The first text: the disclosure, and that only a YES opts the number in. Sent as Smart
    Encoding would send it (templates.sms_segments.smart_encode: "número" goes as "numero"):
    one accent GSM-7 lacks makes the whole text UCS-2, 70 characters a part instead of 160,
    and the Spanish disclosure two parts instead of five. The ledger keeps the text as sent."""
    ask = "Responda SI para confirmar." if language == SPANISH else "Reply YES to confirm."
    return smart_encode(f"{settings.clinic.name}: {ask} {sms_disclosure(settings, language)}")


def embed_origins(settings: Settings) -> list[str]:
    """The origins allowed to frame the form: the configured ones, else the clinic's website."""
    if settings.signup.embed_origins:
        return list(settings.signup.embed_origins)
    site = urlsplit(settings.clinic.website)
    return [f"{site.scheme.lower()}://{site.netloc.lower()}"]


def _embedded(request: Request) -> bool:
    return request.query_params.get("embed") == "1"


def _framed(request: Request, response: Response) -> Response:
    """Framing only for the embedded form and only by the clinic's site (CSP Level 2
    frame-ancestors; browsers then ignore X-Frame-Options, which web.access_log leaves out)."""
    ancestors = "'none'"
    if _embedded(request):
        ancestors = " ".join(embed_origins(_services(request).settings))
    response.headers["Content-Security-Policy"] = f"frame-ancestors {ancestors}"
    return response


def _services(request: Request) -> WebServices:
    nurture: WebServices = request.app.state.nurture
    return nurture


def form_link(base_url: str, language: str, *, embed: bool = False) -> str:
    """The form's address: the hosted page, or (embed) the one the website's iframe shows."""
    return with_language(f"{base_url}/join", language) + ("&embed=1" if embed else "")


def _form_url(request: Request, settings: Settings, language: str) -> str:
    return form_link(settings.web.public_base_url, language, embed=_embedded(request))


def _form_page(request: Request, status_code: int = 200, **context: Any) -> HTMLResponse:
    nurture = _services(request)
    tokens: SignupTokens = request.app.state.signup_tokens
    language = page_language(request)
    return page(
        request,
        "join.html",
        status_code,
        language=language,
        embed=_embedded(request),
        token=tokens.form_token(),
        action=form_link("", language, embed=_embedded(request)),
        honeypot=HONEYPOT,
        disclosure=sms_disclosure(nurture.settings, language),
        email_statement=_email_statement(nurture.settings, language),
        **context,
    )


def _email_statement(settings: Settings, language: str) -> str:
    return EMAIL_STATEMENT.get(language, EMAIL_STATEMENT["en"]).format(clinic=settings.clinic.name)


async def join_page(request: Request) -> Response:
    return _framed(request, _form_page(request))


async def join(request: Request) -> Response:
    return _framed(request, await _take_form(request))


async def _take_form(request: Request) -> Response:
    nurture = _services(request)
    form = await request.form(max_files=0, max_fields=20)
    fields = {key: str(value)[:MAX_FIELD] for key, value in form.items() if isinstance(value, str)}
    language, embed = page_language(request), _embedded(request)
    if fields.get(HONEYPOT):  # a script: thank it and do nothing, telling it nothing
        log.info("sign-up form: honeypot filled, ignored")
        return page(request, "join_done.html", language=language, state="sent", embed=embed)
    tokens: SignupTokens = request.app.state.signup_tokens
    refusal = tokens.check_form(fields.get("token", ""))
    email, phone = fields.get("email", "").strip(), fields.get("phone", "").strip()
    limiter: AddressLimiter = request.app.state.signup_limiter
    ip = client_address(request)
    keys = [f"ip:{ip}", *([f"email:{email.lower()}"] if email else [])]
    keys += [f"phone:{phone}"] if phone else []
    if refusal is None and not limiter.allow(keys):
        refusal = Refusal.RATE_LIMITED
    if refusal is not None:
        log.info("sign-up form refused: %s", refusal)
        status = 429 if refusal == Refusal.RATE_LIMITED else 400
        return _form_page(request, status, refusal=str(refusal), values=fields)
    settings = nurture.settings
    ticked = fields.get("sms_consent") == "yes"
    signup = FormSignup(
        email=email or None,
        phone=phone or None,
        sms_consent=ticked,
        first_name=fields.get("first_name", "").strip()[:100],
        last_name=fields.get("last_name", "").strip()[:100],
        language=language,
        evidence=FormEvidence(
            form_text=_email_statement(settings, language),
            sms_disclosure=sms_disclosure(settings, language) if ticked else "",
            form_url=_form_url(request, settings, language),
            ip=ip,
            user_agent=request.headers.get("user-agent", "")[:400],
            at=nurture.clock(),
        ),
    )
    if not signup.email:
        return _form_page(request, 400, problem="email", values=fields)
    try:
        pending = await run_in_threadpool(_take_in, nurture, signup)
    except InputError:
        return _form_page(request, 400, problem="address", values=fields)
    except IntakeConflict:  # the same page: the form must not tell who is on our lists
        log.info("sign-up for %s conflicts with a contact we hold", mask_email(signup.email))
        return page(request, "join_done.html", language=language, state="sent", embed=embed)
    await send_confirmations(nurture, request.app.state.signup_tokens, pending, language)
    return page(request, "join_done.html", language=language, state="sent", embed=embed)


@dataclass(frozen=True)
class ToConfirm:
    """What to send once the sign-up is committed: the addresses and their pending events."""

    email: str | None
    phone: str | None
    email_event: int | None
    sms_event: int | None


def _take_in(nurture: WebServices, signup: FormSignup) -> ToConfirm:
    zone = nurture.settings.clinic.default_timezone
    with transaction(nurture.sessions) as session:
        pending = sign_up(session, signup, default_timezone=zone)
        return ToConfirm(
            pending.contact.email,
            pending.contact.phone,
            pending.email.id if pending.email else None,
            pending.sms.id if pending.sms else None,
        )


def _channels(nurture: WebServices) -> tuple[EmailProvider, SmsProvider]:
    """The configured providers, each with its own pool on this request's loop."""
    return nurture.direct_email(), nurture.direct_sms()


async def send_confirmations(
    nurture: WebServices, tokens: SignupTokens, pending: ToConfirm, language: str
) -> None:
    """The confirmation email and the YES text (also the email of an address texted back after
    text-to-join, web.text_join). A failed send leaves the sign-up pending (the
    person may send the form again); it is logged, never shown. Their message ids are the
    pending events' ids, negated: no row of `messages`, and no outbox file of a campaign's."""
    settings = nurture.settings
    email_provider, sms_provider = _channels(nurture)
    try:
        if pending.email_event is not None and pending.email:
            token = tokens.confirm_token(pending.email_event)
            link = f"{settings.web.public_base_url}/join/confirm/{token}"
            message = _confirmation_email(
                settings, -pending.email_event, pending.email, link, language
            )
            await email_provider.send(message)
        if pending.sms_event is not None and pending.phone:
            text = OutgoingSms(
                message_id=-pending.sms_event,
                to=pending.phone,
                body=confirm_prompt(settings, language),
                from_number=settings.sms.from_number,
                messaging_service_sid=settings.sms.messaging_service_sid,
            )
            await sms_provider.send(text)
    except ProviderError as exc:
        log.warning("a sign-up confirmation was not sent: %s", exc)
    finally:
        await email_provider.aclose()
        if id(sms_provider) != id(email_provider):  # one object may serve both (the outbox)
            await sms_provider.aclose()


def _confirmation_email(
    settings: Settings, message_id: int, to: str, link: str, language: str
) -> OutgoingEmail:
    """A small transactional email: why it came, the link, the clinic's postal address."""
    clinic = settings.clinic
    subject, lead, button, ignore = CONFIRM_EMAIL.get(language, CONFIRM_EMAIL["en"])
    lead = lead.format(clinic=clinic.name)
    text = f"{lead}\n\n{link}\n\n{ignore}\n\n{clinic.postal_address}\n"
    body = (
        f"<p>{html.escape(lead)}</p>"
        f'<p><a href="{html.escape(link)}">{html.escape(button)}</a></p>'
        f"<p>{html.escape(ignore)}</p>"
        f'<p style="color:#5b6b7a;font-size:12px">{html.escape(clinic.postal_address)}</p>'
    )
    return OutgoingEmail(
        message_id=message_id,
        to=to,
        from_email=settings.email.from_address,
        from_name=settings.email.from_name,
        reply_to=settings.email.reply_to,
        subject=f"{clinic.name}: {subject}",
        html=body,
        text=text,
        categories=("nurture", "signup-confirmation"),
    )


async def confirm_page(request: Request, token: str) -> HTMLResponse:
    tokens: SignupTokens = request.app.state.signup_tokens
    state = "confirm" if tokens.read_confirm(token) is not None else "expired"
    return page(request, "join_done.html", 200 if state == "confirm" else 404, state=state)


async def confirm(request: Request, token: str) -> HTMLResponse:
    nurture = _services(request)
    tokens: SignupTokens = request.app.state.signup_tokens
    event_id = tokens.read_confirm(token)
    if event_id is None:
        return page(request, "join_done.html", 404, state="expired")
    ip, agent = client_address(request), request.headers.get("user-agent", "")[:400]

    def apply() -> bool:
        with transaction(nurture.sessions) as session:
            return (
                confirm_email(session, event_id, ip=ip, user_agent=agent, at=nurture.clock())
                is not None
            )

    confirmed = await run_in_threadpool(apply)
    log.info("sign-up %s: email %s", event_id, "confirmed" if confirmed else "already done")
    return page(request, "join_done.html", state="confirmed")


def install(api: FastAPI) -> None:
    """The routes and what they share: the token signers and the per-address limiter."""
    nurture: WebServices = api.state.nurture
    signup = nurture.settings.signup
    api.state.signup_tokens = SignupTokens(
        nurture.secret_key,
        nurture.clock,
        min_seconds=signup.form_min_seconds,
        max_age=signup.form_max_age_seconds,
        link_days=signup.unconfirmed_days,
    )
    api.state.signup_limiter = AddressLimiter(nurture.clock, signup.per_address_per_hour)
    tags: list[str | Enum] = ["sign-up"]
    api.add_api_route(
        "/join", join_page, methods=["GET"], tags=tags, response_class=HTMLResponse,
        summary="The sign-up form (English or Spanish: ?lang=es)",
    )  # fmt: skip
    api.add_api_route(
        "/join", join, methods=["POST"], tags=tags, response_class=HTMLResponse,
        summary="Send the sign-up form: nothing is opted in until confirmed (double opt-in)",
    )  # fmt: skip
    api.add_api_route(
        "/join/confirm/{token}", confirm_page, methods=["GET"], tags=tags,
        response_class=HTMLResponse, summary="Email confirmation page (a GET confirms nothing)",
    )  # fmt: skip
    api.add_api_route(
        "/join/confirm/{token}", confirm, methods=["POST"], tags=tags,
        response_class=HTMLResponse, summary="Confirm the email address: opts it in",
    )  # fmt: skip
