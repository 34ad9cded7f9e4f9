"""SendGrid Signed Event Webhook: batched delivery, engagement and unsubscribe events.

The signature (ECDSA P-256/SHA-256 over timestamp + the raw body) is checked with sendgrid's own
EventWebhook helper before anything is parsed. The helper has no replay window, so a timestamp
further than `REPLAY_WINDOW` from our clock is refused too, and each `sg_event_id` is recorded
once, so a replayed or retried batch changes nothing.
"""

from __future__ import annotations

import binascii
import json
import logging
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from cryptography.exceptions import InvalidSignature
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from sendgrid.helpers.eventwebhook import EventWebhook
from starlette.concurrency import run_in_threadpool

from core.untrusted import whole_number
from providers.events import DeliveryEvent, EventType, RejectReason
from scheduler.deliveries import apply_event
from storage.db import transaction
from web.services import WebServices

router = APIRouter(prefix="/webhooks/sendgrid", tags=["webhooks"])
log = logging.getLogger("nurture.web.sendgrid")

SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
REPLAY_WINDOW = 300  # seconds either side of our clock
MESSAGE_ID_ARG = "nurture_message_id"  # the custom_args key the composer sets
EVENTS = {
    "processed": EventType.QUEUED,
    "delivered": EventType.DELIVERED,
    "deferred": EventType.DEFERRED,
    "bounce": EventType.BOUNCED,
    "dropped": EventType.REJECTED,
    "open": EventType.OPENED,
    "click": EventType.CLICKED,
    "spamreport": EventType.COMPLAINED,
    "unsubscribe": EventType.UNSUBSCRIBED,
    "group_unsubscribe": EventType.UNSUBSCRIBED,
    "group_resubscribe": EventType.RESUBSCRIBED,
}


class SendGridVerifier:
    """Holds the parsed public key (from NURTURE_SENDGRID_WEBHOOK_PUBLIC_KEY)."""

    def __init__(self, public_key: str) -> None:
        self.public_key = public_key.strip()

    @cached_property
    def helper(self) -> EventWebhook | None:
        if not self.public_key:
            return None
        try:
            return EventWebhook(self.public_key)
        except ValueError:
            log.error("NURTURE_SENDGRID_WEBHOOK_PUBLIC_KEY is not a base64 DER public key")
            return None

    def verify(self, body: bytes, signature: str, timestamp: str, now: datetime) -> bool:
        helper = self.helper
        if helper is None:
            raise HTTPException(503, "not configured")
        seconds = whole_number(timestamp, max_digits=12)
        if not signature or seconds is None:
            return False
        if abs(now.timestamp() - seconds) > REPLAY_WINDOW:
            return False
        try:
            return bool(helper.verify_signature(body.decode("utf-8"), signature, timestamp))
        except (ValueError, binascii.Error, InvalidSignature, UnicodeDecodeError):
            return False


@router.post(
    "/events",
    summary="SendGrid Signed Event Webhook (a JSON array of events)",
    description=(
        f"Verified with the ECDSA public key from NURTURE_SENDGRID_WEBHOOK_PUBLIC_KEY over the "
        f"`{TIMESTAMP}` value followed by the raw body; the signature is `{SIGNATURE}`. "
        f"Timestamps more than {REPLAY_WINDOW} s away are refused. Each event is recorded once "
        "(sg_event_id). Messages are found through custom_args `nurture_message_id`. A hard "
        "bounce or a spam report suppresses the address at once, as do unsubscribe and "
        "group_unsubscribe."
    ),
    responses={
        200: {"description": "Accepted: counts of new and duplicate events"},
        400: {"description": "Not a JSON array of events"},
        403: {"description": "Missing, wrong or stale signature (nothing was changed)"},
        503: {"description": "The public key is not configured"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "array", "items": {"type": "object"}, "maxItems": 10000}
                }
            },
        }
    },
)
async def events(request: Request) -> Response:
    app: WebServices = request.app.state.nurture
    verifier: SendGridVerifier = request.app.state.sendgrid_verifier
    body = await request.body()
    signature = request.headers.get(SIGNATURE, "")
    timestamp = request.headers.get(TIMESTAMP, "").strip()
    if not verifier.verify(body, signature, timestamp, app.clock()):
        log.warning("rejected a SendGrid event batch: bad or stale signature")
        raise HTTPException(403, "invalid signature")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
        raise HTTPException(400, "body is not JSON") from None
    if not isinstance(payload, list) or not all(isinstance(item, dict) for item in payload):
        raise HTTPException(400, "expected a JSON array of event objects")
    now = app.clock()
    parsed = [event for item in payload if (event := normalise(item, now)) is not None]
    new = await run_in_threadpool(_apply_all, app, parsed)
    log.info("sendgrid batch: %d events, %d new", len(payload), new)
    return JSONResponse({"received": len(payload), "new": new, "duplicates": len(parsed) - new})


def _apply_all(app: WebServices, events: list[DeliveryEvent]) -> int:
    with transaction(app.sessions) as session:
        return sum(apply_event(session, event, app.settings.status) for event in events)


def normalise(raw: dict[str, Any], now: datetime) -> DeliveryEvent | None:
    """One SendGrid event in our vocabulary; None when it cannot be deduplicated (no id)."""
    event_id = str(raw.get("sg_event_id") or "")
    word = str(raw.get("event") or "")
    if not event_id or not word:
        return None
    event_type = EVENTS.get(word, EventType.UNKNOWN)
    reason = None
    description = str(raw.get("reason") or raw.get("response") or "")
    if event_type == EventType.BOUNCED:
        kind = str(raw.get("type") or raw.get("bounce_classification") or "bounce").lower()
        reason = RejectReason.BLOCKED if kind == "blocked" else RejectReason.HARD_BOUNCE
    elif event_type == EventType.REJECTED:
        reason = RejectReason.SUPPRESSED if _provider_list(description) else RejectReason.OTHER
    sg_message_id = str(raw.get("sg_message_id") or "")
    return DeliveryEvent(
        provider="sendgrid",
        event_type=event_type,
        event_id=f"sendgrid:{event_id}"[:200],
        occurred_at=_time(raw.get("timestamp"), now),
        message_id=_our_id(raw.get(MESSAGE_ID_ARG)),
        provider_message_id=sg_message_id.split(".", 1)[0][:100],
        recipient=str(raw.get("email") or "").strip().lower()[:320],
        reject_reason=reason,
        error_code=str(raw.get("status") or "")[:20],
        description=description[:500],
        provider_status=word[:30],
        raw=raw,
    )


def _provider_list(description: str) -> bool:
    text = description.lower()
    return any(word in text for word in ("bounced address", "spam reporting", "unsubscribed"))


def _our_id(value: Any) -> int | None:
    return whole_number(str(value or ""), max_digits=18)


def _time(value: Any, now: datetime) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return now
