"""/api/v1/contacts: create or update a person with consent, record what happened, read them.

Every change goes through the rules the other paths use: contacts.intake (normalisation and the
consent ledger) and campaigns.booking.record_booking_event (a booking, cancellation or no-show
ends and starts sequences exactly as the booking webhook's does). The ledger's `source` names
the API key, so staff see which client said.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.booking import record_booking_event
from contacts.intake import ConsentStatement, Intake, take_in
from staff.api_keys import KeyHolder
from storage.models import Campaign, Channel, ConsentStatus, Contact, Enrollment
from web.api.access import Reader, Writer
from web.api.idempotency import HEADER, check_key, request_hash, run_once
from web.api.problems import Problem, ProblemRoute, documented
from web.api.schemas import (
    ChannelConsent,
    ContactIn,
    ContactOut,
    ContactWritten,
    EnrollmentOut,
    EventIn,
    EventRecorded,
)
from web.services import WebServices

router = APIRouter(route_class=ProblemRoute, tags=["contacts"])
ContactId = Annotated[int, Path(ge=1, le=2**63 - 1)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=HEADER,
        description="Any unique string; a repeat within 24 h answers the first response",
    ),
]


def _source(holder: KeyHolder) -> str:
    return f"api: {holder.name}"[:100]


def _answer(request: Request, holder: KeyHolder, key: str | None, body: Any, work: Any) -> Any:
    nurture: WebServices = request.app.state.nurture
    fingerprint = request_hash(request.method, request.url.path, body)
    answer = run_once(nurture, holder.id, check_key(key), fingerprint, work)
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else {}
    return JSONResponse(answer.body, status_code=answer.status, headers=headers)


@router.post(
    "/contacts",
    summary="Create or update a contact by email or phone, with consent evidence",
    status_code=201,
    response_model=ContactWritten,
    responses={
        200: {"model": ContactWritten, "description": "Updated"},
        **documented(401, 403, 409, 422, 429),
    },
)
def post_contact(
    request: Request, holder: Writer, contact: ContactIn, key: IdempotencyKey = None
) -> Any:
    nurture: WebServices = request.app.state.nurture

    def work(session: Session) -> tuple[int, dict[str, Any]]:
        now = nurture.clock()
        consent = {
            channel: ConsentStatement(
                ConsentStatus(said.status), said.evidence, said.occurred_at or now
            )
            for channel, said in (
                (Channel.EMAIL, contact.email_consent),
                (Channel.SMS, contact.sms_consent),
            )
            if said is not None
        }
        intake = Intake(
            source=_source(holder),
            email=contact.email,
            phone=contact.phone,
            first_name=contact.first_name,
            last_name=contact.last_name,
            timezone=contact.timezone,
            language=contact.language,
            tags=tuple(contact.tags),
            consent=consent,
        )
        row, created = take_in(
            session, intake, default_timezone=nurture.settings.clinic.default_timezone, now=now
        )
        return (201 if created else 200), ContactWritten(id=row.id, created=created).model_dump()

    return _answer(request, holder, key, contact.model_dump(mode="json"), work)


@router.post(
    "/contacts/{contact_id}/events",
    summary="Record a booking, cancellation, no-show or attendance",
    description=(
        "As the booking webhook does: `booked` ends every nurture sequence that exits on "
        "booking and may start a pre-visit sequence, or with a new `appointment_at` move the "
        "running one's visit (`moved_campaigns`); `cancelled` and `no_show` end that and may "
        "start a re-booking one, `attended` ends it. A `reference` is recorded once per kind, "
        "whichever path reported it first (a repeat answers `duplicate`)."
    ),
    status_code=201,
    response_model=EventRecorded,
    responses=documented(401, 403, 404, 422, 429),
)
def post_event(
    request: Request,
    holder: Writer,
    contact_id: ContactId,
    event: EventIn,
    key: IdempotencyKey = None,
) -> Any:
    nurture: WebServices = request.app.state.nurture

    def work(session: Session) -> tuple[int, dict[str, Any]]:
        contact = _contact(session, contact_id)
        at = event.occurred_at or nurture.clock()
        answer = EventRecorded(contact_id=contact.id, kind=event.kind, status="recorded")
        recorded = record_booking_event(
            session,
            contact,
            event.kind,
            at=at,
            source=_source(holder),
            reference=event.reference,
            appointment_at=event.appointment_at,
        )
        if recorded.status == "duplicate":
            answer.status = "duplicate"
        answer.exited_campaigns = list(recorded.exited_campaigns)
        answer.enrolled_campaigns = list(recorded.enrolled_campaigns)
        answer.moved_campaigns = list(recorded.moved_campaigns)
        return 201, answer.model_dump()

    return _answer(request, holder, key, event.model_dump(mode="json"), work)


@router.get(
    "/contacts/{contact_id}",
    summary="A contact's consent per channel and enrollments",
    response_model=ContactOut,
    responses=documented(401, 403, 404, 422, 429),
)
def get_contact(request: Request, holder: Reader, contact_id: ContactId) -> ContactOut:
    nurture: WebServices = request.app.state.nurture
    with nurture.sessions() as session:
        contact = _contact(session, contact_id)
        rows = session.execute(
            select(Enrollment, Campaign.name)
            .join(Campaign, Campaign.id == Enrollment.campaign_id)
            .where(Enrollment.contact_id == contact.id)
            .order_by(Enrollment.enrolled_at, Enrollment.id)
        ).all()
        return ContactOut(
            id=contact.id,
            email=contact.email,
            phone=contact.phone,
            first_name=contact.first_name,
            last_name=contact.last_name,
            timezone=contact.timezone,
            language=contact.language,
            tags=contact.tags,
            booked_at=contact.booked_at,
            consent={
                "email": ChannelConsent(
                    status=_status(contact.email_consent), has_address=contact.email is not None
                ),
                "sms": ChannelConsent(
                    status=_status(contact.sms_consent), has_address=contact.phone is not None
                ),
            },
            enrollments=[
                EnrollmentOut(
                    campaign=name,
                    state=enrollment.state,
                    enrolled_at=enrollment.enrolled_at,
                    exited_at=enrollment.exited_at,
                    exit_reason=enrollment.exit_reason,
                )
                for enrollment, name in rows
            ],
        )


def _status(value: str | None) -> Any:
    return value if value in (ConsentStatus.OPTED_IN, ConsentStatus.OPTED_OUT) else None


def _contact(session: Session, contact_id: int) -> Contact:
    contact = session.get(Contact, contact_id)
    if contact is None or contact.erased_at is not None:
        raise Problem(404, f"no contact {contact_id}")
    return contact
