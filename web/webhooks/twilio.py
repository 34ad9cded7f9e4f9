"""Twilio webhooks: inbound texts (STOP/START/HELP and free text) and message status callbacks.

Every request is checked first with twilio's own RequestValidator (HMAC-SHA1 of the full public
URL, query string included, plus the sorted POST parameters, keyed by the auth token); a missing or
wrong `X-Twilio-Signature` is a 403 with no side effect. The URL is rebuilt from
`web.public_base_url`, because behind a proxy the socket never sees what Twilio called.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from campaigns.replies import pause_for_reply
from contacts.keywords import Intent, Language, act_on, classify, reply_to
from contacts.normalize import normalize_phone
from core.errors import InputError
from core.redact import mask_phone
from core.untrusted import whole_number
from providers.events import DeliveryEvent, EventType, RejectReason
from scheduler.deliveries import apply_event, seen
from storage.db import transaction
from storage.models import Channel, Contact, Event
from web.join import send_confirmations
from web.proxy import public_url
from web.services import WebServices
from web.text_join import TextAnswer, answer_signup_text

router = APIRouter(prefix="/webhooks/twilio", tags=["webhooks"])
log = logging.getLogger("nurture.web.twilio")

SIGNED: dict[int | str, dict[str, Any]] = {
    403: {"description": "Missing or wrong X-Twilio-Signature (nothing was changed)"},
    503: {"description": "TWILIO_AUTH_TOKEN is not configured"},
}
FORM_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {"type": "object", "additionalProperties": {"type": "string"}}
            }
        },
    }
}
STATUSES = {
    "accepted": EventType.QUEUED,
    "scheduled": EventType.QUEUED,
    "queued": EventType.QUEUED,
    "sending": EventType.QUEUED,
    "sent": EventType.SENT,
    "delivered": EventType.DELIVERED,
    "read": EventType.DELIVERED,
    "undelivered": EventType.BOUNCED,
    "failed": EventType.FAILED,
    "canceled": EventType.REJECTED,
}


async def verified_params(request: Request) -> dict[str, str]:
    app: WebServices = request.app.state.nurture
    token = app.settings.secrets.twilio_auth_token
    if not token:
        log.error("a Twilio webhook arrived but TWILIO_AUTH_TOKEN is not set")
        raise HTTPException(503, "not configured")
    signature = request.headers.get("x-twilio-signature", "")
    form = await request.form(max_files=0, max_fields=200)
    params = {key: value for key, value in form.items() if isinstance(value, str)}
    url = public_url(request, app.settings.web.public_base_url)
    if not signature or not RequestValidator(token).validate(url, params, signature):
        log.warning("rejected a Twilio webhook with a bad signature for %s", request.url.path)
        raise HTTPException(403, "invalid signature")
    return params


def twiml(text: str | None) -> Response:
    reply = MessagingResponse()
    if text:
        reply.message(text)
    return Response(str(reply), media_type="application/xml")


@router.post(
    "/inbound",
    summary="Inbound text: STOP/START/HELP keywords and free-text revocations (TwiML answer)",
    description=(
        "Signed by Twilio (X-Twilio-Signature over web.public_base_url + path + query and the "
        "sorted form parameters). STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT "
        "and Spanish PARAR, ALTO, CANCELAR, BASTA, NO MAS (or OptOutType=STOP) suppress texts "
        "to the sender at once and answer one confirmation; START, UNSTOP, YES (SI, COMENZAR, "
        "REANUDAR) re-subscribe; HELP, INFO (AYUDA) answer the clinic's help text. Free text "
        "that plainly asks to stop, in English or Spanish, counts as a revocation and is flagged "
        "for staff. Answers are in the sender's language. Idempotent per MessageSid."
    ),
    responses={200: {"content": {"application/xml": {}}}, **SIGNED},
    response_class=Response,
    openapi_extra=FORM_BODY,
)
async def inbound(request: Request) -> Response:
    params = await verified_params(request)
    app: WebServices = request.app.state.nurture
    answer = await run_in_threadpool(take_inbound, app, params)
    response = twiml(answer.text)
    if answer.email_to_confirm is not None:  # after the answer: Twilio waits 15 s at most
        tokens = request.app.state.signup_tokens
        confirm = answer.email_to_confirm
        response.background = BackgroundTask(
            send_confirmations, app, tokens, confirm, answer.language
        )
    return response


def handle_inbound(app: WebServices, params: dict[str, str]) -> str | None:
    """Apply an inbound text in one transaction; returns the reply text, if any."""
    return take_inbound(app, params).text


def take_inbound(app: WebServices, params: dict[str, str]) -> TextAnswer:
    """Apply an inbound text in one transaction: the reply text (None: no reply) and, for an
    email address texted back after text-to-join, its confirmation email to send."""
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    body = params.get("Body", "")
    heard = classify(body, params.get("OptOutType"))
    sender = _phone(params.get("From", ""))
    event_id = f"twilio:{sid}:received" if sid else None
    with transaction(app.sessions) as session:
        if event_id and seen(session, event_id):
            return TextAnswer(None)  # a retry of a text we already answered
        contact = session.scalar(select(Contact).where(Contact.phone == sender)) if sender else None
        session.add(
            Event(
                kind="inbound_flagged" if heard.intent == Intent.REVOKE else "inbound",
                occurred_at=app.clock(),
                contact_id=contact.id if contact else None,
                channel=str(Channel.SMS),
                provider="twilio",
                provider_event_id=event_id,
                data={
                    "intent": str(heard.intent),
                    "language": str(heard.language),
                    "body": body[:1600],
                    "from": mask_phone(sender),
                },
            )
        )
        answer = answer_signup_text(app, session, heard, body, sender, contact) if sender else None
        if answer is not None:  # a sign-up's YES, a join keyword, the email address it asked for
            return answer
        if sender:
            act_on(session, heard.intent, sender, contact, at=app.clock())
        if contact is not None and heard.intent == Intent.OTHER:  # a reply for a person
            pause_for_reply(session, contact.id, at=app.clock())
        if contact is not None and heard.intent != Intent.OTHER:
            if heard.language == Language.SPANISH:  # PARAR, AYUDA, "ya no me manden": a
                contact.language = str(Language.SPANISH)  # clear sign they read Spanish
    log.info("inbound text from %s: %s (%s)", mask_phone(sender), heard.intent, heard.language)
    return TextAnswer(reply_to(heard, app.settings.clinic))


def _phone(raw: str) -> str:
    try:
        return normalize_phone(raw)
    except InputError:
        return raw.strip()[:20]


@router.post(
    "/status",
    summary="Message status callback: queued, sent, delivered, undelivered, failed",
    description=(
        "Signed by Twilio like /inbound. `m` is our message id, put in the callback URL when "
        "the text was sent. Statuses may arrive late or twice: each MessageSid+status is "
        "recorded once and a message never moves backwards (delivered stays delivered). "
        "Numbers failing repeatedly as unreachable or landline (status.unreachable_codes) are "
        "suppressed for texts after status.unreachable_threshold failures."
    ),
    status_code=204,
    responses=SIGNED,
    response_class=Response,
    openapi_extra=FORM_BODY,
)
async def status(
    request: Request, m: str | None = Query(None, description="Our message id")
) -> Response:
    params = await verified_params(request)
    app: WebServices = request.app.state.nurture
    event = status_event(app, params, m)
    if event is not None:
        await run_in_threadpool(_apply, app, event)
    return Response(status_code=204)


def status_event(app: WebServices, params: dict[str, str], m: str | None) -> DeliveryEvent | None:
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    word = (params.get("MessageStatus") or params.get("SmsStatus") or "").strip().lower()
    if not sid or not word:
        return None
    code = (params.get("ErrorCode") or "").strip()
    unreachable = whole_number(code, max_digits=9) in app.settings.status.unreachable_codes
    return DeliveryEvent(
        provider="twilio",
        event_type=STATUSES.get(word, EventType.UNKNOWN),
        event_id=f"twilio:{sid}:{word}"[:200],
        occurred_at=app.clock(),
        message_id=whole_number(m, max_digits=18),
        provider_message_id=sid[:100],
        recipient=_phone(params.get("To", "")),
        reject_reason=RejectReason.UNREACHABLE if unreachable else None,
        error_code=code[:20],
        description=(params.get("ErrorMessage") or "")[:300],
        provider_status=word[:30],
        raw=params,
    )


def _apply(app: WebServices, event: DeliveryEvent) -> None:
    with transaction(app.sessions) as session:
        applied = apply_event(session, event, app.settings.status)
    log.info(
        "twilio status %s for message %s%s",
        event.provider_status,
        event.message_id,
        "" if applied else " (duplicate)",
    )
