"""POST /webhooks/booking: the clinic's booking system tells us someone booked.

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

from campaigns.booking import booking_recorded, find_contact, mark_booked
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
    """What the booking system sends: its booking id and the person's email and/or phone."""

    model_config = ConfigDict(extra="ignore")

    booking_id: str = Field(min_length=1, max_length=150, description="Unique per booking")
    email: str | None = Field(None, max_length=320)
    phone: str | None = Field(None, max_length=40)
    booked_at: datetime | None = Field(None, description="When it was booked (ISO 8601)")

    @model_validator(mode="after")
    def _someone(self) -> BookingNotice:
        if not (self.email or self.phone):
            raise ValueError("give email or phone")
        if self.booked_at is not None:
            if self.booked_at.tzinfo is None:
                raise ValueError("booked_at needs a time zone offset")
            try:  # 9999-12-31T23:59-05:00 is past the last UTC moment Python can hold
                self.booked_at = self.booked_at.astimezone(UTC)
            except OverflowError:
                raise ValueError("booked_at is out of range") from None
        return self


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
    summary="A booking was made: the contact leaves every nurture sequence",
    description=(
        f"Header `{HEADER}: t=<unix seconds>,sha256=<hex>` where `<hex>` is the lowercase hex "
        "HMAC-SHA256, keyed with NURTURE_BOOKING_WEBHOOK_SECRET, of the ASCII timestamp, a dot, "
        f"and the raw body. Requests more than {REPLAY_WINDOW} s old (or ahead) are refused. "
        "The contact is found by email or phone; each booking_id is recorded once. Answers "
        "200 with status `booked`, `duplicate` or `unknown_contact` (not retried)."
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
        if booking_recorded(session, notice.booking_id):
            return "duplicate"
        try:
            contact = _find(session, notice)
        except (NotFound, InputError):
            log.info(
                "booking for an unknown contact (%s)", mask_address(notice.email or notice.phone)
            )
            return "unknown_contact"
        mark_booked(
            session,
            contact,
            at=notice.booked_at or app.clock(),
            source="booking webhook",
            reference=notice.booking_id,
        )
    return "booked"


def _find(session: Session, notice: BookingNotice) -> Contact:
    for value in (notice.email, notice.phone):
        if value:
            try:
                return find_contact(session, value)
            except (NotFound, InputError):
                continue
    raise NotFound("no contact")
