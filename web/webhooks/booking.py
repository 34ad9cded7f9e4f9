"""POST /webhooks/booking: the clinic's booking system tells us someone booked, cancelled, did
not come or came (`event`, default `booked`); campaigns.booking.record_booking_event reacts to
each, as it does for the REST API and the command line (one ledger).

Signature (Stripe-style, so a captured request cannot be replayed later):

    X-Nurture-Signature: t=<unix seconds>,sha256=<hex>
    <hex> = HMAC-SHA256(key=NURTURE_BOOKING_WEBHOOK_SECRET, msg=b"<t>." + raw request body)

`t` must be within `REPLAY_WINDOW` seconds of our clock, the digest is compared in constant time
(hmac.compare_digest), and `booking_id` is recorded once, so a retry inside the window is a no-op.
"""

from __future__ import annotations

import hmac
import logging
import re
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from campaigns.booking import find_contact, record_booking_event
from campaigns.triggers import BookingEvent
from core.errors import InputError, NotFound
from core.redact import mask_address
from core.signatures import HEADER, sign
from storage.db import transaction
from storage.models import Contact
from web.services import WebServices

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
log = logging.getLogger("nurture.web.booking")

REPLAY_WINDOW = 300
_HEADER_FORMAT = re.compile(r"^t=([0-9]{1,12}),sha256=([0-9a-f]{64})$")


class BookingNotice(BaseModel):
    """What the booking system sends: what happened to which booking, the person's email and/or
    phone, and optionally when the visit is (the pre-visit sequence may use it)."""

    model_config = ConfigDict(extra="ignore")

    event: BookingEvent = Field("booked", description="What happened to the booking")
    booking_id: str = Field(min_length=1, max_length=150, description="Unique per booking")
    email: str | None = Field(None, max_length=320)
    phone: str | None = Field(None, max_length=40)
    booked_at: datetime | None = Field(
        None,
        description="When it happened (ISO 8601, with offset)",
    )
    appointment_at: datetime | None = Field(
        None, description="When the visit is (ISO 8601, with offset)"
    )

    @model_validator(mode="after")
    def _someone(self) -> BookingNotice:
        if not (self.email or self.phone):
            raise ValueError("give email or phone")
        self.booked_at = _in_utc(self.booked_at, "booked_at")
        self.appointment_at = _in_utc(self.appointment_at, "appointment_at")
        return self


def _in_utc(moment: datetime | None, name: str) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError(f"{name} needs a time zone offset")
    try:  # 9999-12-31T23:59-05:00 is past the last UTC moment Python can hold
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{name} is out of range") from None


def verify(secret: str, body: bytes, header: str, now: datetime) -> bool:
    match = _HEADER_FORMAT.match(header.strip())
    if match is None:
        return False
    timestamp, given = int(match[1]), match[2]
    if abs(now.timestamp() - timestamp) > REPLAY_WINDOW:
        return False
    expected = sign(secret, body, timestamp).rsplit("=", 1)[1]
    return hmac.compare_digest(expected, given)


@router.post(
    "/booking",
    summary="A booking was made, cancelled, missed or attended: sequences react",
    description=(
        f"Header `{HEADER}: t=<unix seconds>,sha256=<hex>` where `<hex>` is the lowercase hex "
        "HMAC-SHA256, keyed with NURTURE_BOOKING_WEBHOOK_SECRET, of the ASCII timestamp, a dot, "
        f"and the raw body. Requests more than {REPLAY_WINDOW} s old (or ahead) are refused. "
        "The contact is found by email or phone; each booking_id is recorded once per event. "
        "`booked` ends the nurture and may start a pre-visit sequence; `cancelled` and "
        "`no_show` end that and may start a re-booking one; `attended` ends it (the visit "
        "happened). Answers 200 with status `booked`, `cancelled`, `no_show`, `attended`, "
        "`duplicate` or `unknown_contact` (not retried)."
    ),
    responses={
        200: {"description": "Recorded (or nothing to do)"},
        403: {"description": "Missing, wrong or stale signature (nothing was changed)"},
        422: {"description": "The body is not a booking notice"},
        503: {"description": "NURTURE_BOOKING_WEBHOOK_SECRET is not configured"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": BookingNotice.model_json_schema()}},
        }
    },
)
async def booking(request: Request) -> Response:
    app: WebServices = request.app.state.nurture
    secret = app.settings.secrets.booking_webhook_secret
    if not secret:
        log.error("a booking webhook arrived but NURTURE_BOOKING_WEBHOOK_SECRET is not set")
        raise HTTPException(503, "not configured")
    body = await request.body()
    if not verify(secret, body, request.headers.get(HEADER, ""), app.clock()):
        log.warning("rejected a booking webhook: bad or stale signature")
        raise HTTPException(403, "invalid signature")
    try:
        notice = BookingNotice.model_validate_json(body)
    except ValidationError:
        raise HTTPException(422, "not a booking notice") from None
    status = await run_in_threadpool(record_booking, app, notice)
    return JSONResponse({"status": status})


def record_booking(app: WebServices, notice: BookingNotice) -> str:
    with transaction(app.sessions) as session:
        try:
            contact = _find(session, notice)
        except (NotFound, InputError):
            log.info(
                "booking event for an unknown contact (%s)",
                mask_address(notice.email or notice.phone),
            )
            return "unknown_contact"
        result = record_booking_event(
            session,
            contact,
            notice.event,
            at=notice.booked_at or app.clock(),
            source="booking webhook",
            reference=notice.booking_id,
            appointment_at=notice.appointment_at,
        )
    return result.status


def _find(session: Session, notice: BookingNotice) -> Contact:
    for value in (notice.email, notice.phone):
        if value:
            try:
                return find_contact(session, value)
            except (NotFound, InputError):
                continue
    raise NotFound("no contact")
