"""Booking events: one rule for the booking webhook, the REST API and `nurture contacts booked`.

A person who booked must not get another "book your consultation" nudge, so every active
enrollment whose sequence exits on booking ends now, in the same transaction; the dispatcher then
skips any step already planned ("exited: booked") instead of sending it.

The booking is credited to the last message the person clicked within `CLICK_CREDIT_WINDOW`
(its campaign and step go on the `booked` event, which the funnel counts), so a report shows
which message brought the booking in.

Every booking event (booked, cancelled, no_show, attended) goes through `record_booking_event`:
one ledger row (deduplicated by the booking system's reference, whichever path reported it),
then campaigns.triggers ends the sequences it makes moot and starts those it triggers. A known
booking reported again with a new visit time is a reschedule (`_reschedule`), not a retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.definitions import Sequence
from campaigns.enrollment import active_enrollments, exit_enrollment
from campaigns.triggers import BookingEvent, react_to_booking_event
from contacts.normalize import normalize_email, normalize_phone
from core.errors import InputError, NotFound
from storage.models import Campaign, Contact, Event

#: A booking this long after a click is still that message's doing; an older click (or none)
#: leaves the booking on no campaign. Two weeks covers "read it, thought about it, called".
CLICK_CREDIT_WINDOW = timedelta(days=14)
#: The ledger's kind for a known booking's visit moved (its reference kept, a new time).
RESCHEDULED = "rescheduled"


@dataclass(frozen=True)
class BookingEventResult:
    status: str  # the event's kind, or "duplicate" (its reference was recorded before)
    exited_campaigns: tuple[str, ...] = ()
    enrolled_campaigns: tuple[str, ...] = ()
    moved_campaigns: tuple[str, ...] = ()  # a running pre-visit that took the new visit time


@dataclass(frozen=True)
class BookingResult:
    contact_id: int
    first_booking: bool  # False when the contact was already marked booked
    exited_campaigns: tuple[str, ...]


def find_contact(session: Session, email_or_phone: str) -> Contact:
    """The contact with this email address or phone number (any common spelling of either)."""
    text = email_or_phone.strip()
    if not text:
        raise InputError("give an email address or a phone number")
    if "@" in text:
        column, value = Contact.email, normalize_email(text)
    else:
        column, value = Contact.phone, normalize_phone(text)
    contact = session.scalar(select(Contact).where(column == value))
    if contact is None or contact.erased_at is not None:
        raise NotFound("no contact with that email address or phone number")
    return contact


def mark_booked(
    session: Session,
    contact: Contact,
    *,
    at: datetime,
    source: str,
    reference: str | None = None,
    appointment_at: datetime | None = None,
) -> BookingResult:
    """Set booked_at (the first booking is kept), record a `booked` event, exit nurture sequences.

    `reference` (the booking system's id) becomes the event's dedupe key, so a retried webhook
    records the booking once.
    """
    first = contact.booked_at is None
    if first:
        contact.booked_at = at
    exited = []
    for enrollment in active_enrollments(session, contact.id):
        campaign = session.get_one(Campaign, enrollment.campaign_id)
        if Sequence.from_snapshot(campaign.definition).exit.booked:
            exit_enrollment(enrollment, "booked", at)
            exited.append(campaign.name)
    clicked = last_click(session, contact.id, at)
    session.add(
        Event(
            kind="booked",
            occurred_at=at,
            contact_id=contact.id,
            message_id=clicked.message_id if clicked else None,
            campaign_id=clicked.campaign_id if clicked else None,
            step_index=clicked.step_index if clicked else None,
            provider="booking" if reference else None,
            provider_event_id=f"booking:{reference}" if reference else None,
            data={"source": source, "first": first, "exited": exited}
            | _appointment(appointment_at),
        )
    )
    session.flush()
    return BookingResult(contact.id, first, tuple(exited))


def last_click(session: Session, contact_id: int, at: datetime) -> Event | None:
    """The contact's last click on one of our messages within `CLICK_CREDIT_WINDOW` before
    `at` (over the (contact, occurred_at) index of events)."""
    return session.scalar(
        select(Event)
        .where(
            Event.contact_id == contact_id,
            Event.occurred_at >= at - CLICK_CREDIT_WINDOW,
            Event.occurred_at <= at,
            Event.kind == "clicked",
            Event.message_id.is_not(None),
        )
        .order_by(Event.occurred_at.desc(), Event.id.desc())
        .limit(1)
    )


def booking_recorded(session: Session, reference: str) -> bool:
    """True when a booking with this reference was already recorded (a provider retry)."""
    return _recorded(session, "booked", reference) is not None


def event_key(kind: str, reference: str) -> str:
    """The ledger's dedupe key of a booking event: `booking:<ref>` for the booking itself (as
    recorded before cancellations were), `booking:<kind>:<ref>` for what happened to it next."""
    return f"booking:{reference}" if kind == "booked" else f"booking:{kind}:{reference}"


def _keys(kind: str, reference: str) -> tuple[str, str]:
    """Every key a booking event with this reference may have been recorded under: today's
    (event_key), and the REST API's before the paths shared one ledger, `api:<kind>:<ref>`
    (a retry spanning that deploy is still a retry)."""
    return event_key(kind, reference), f"api:{kind}:{reference}"


def _recorded(session: Session, kind: str, reference: str) -> Event | None:
    """The event already recorded for this kind and reference, under either key (_keys)."""
    return session.scalar(
        select(Event).where(Event.provider_event_id.in_(_keys(kind, reference))).limit(1)
    )


def record_booking_event(
    session: Session,
    contact: Contact,
    kind: BookingEvent,
    *,
    at: datetime,
    source: str,
    reference: str | None = None,
    appointment_at: datetime | None = None,
) -> BookingEventResult:
    """Record a booking event once per reference and react to it (campaigns.triggers).

    `booked` marks the contact booked (mark_booked: the nurture ends), then may start the
    pre-visit sequence, or, with a new `appointment_at`, move the running one's visit;
    `cancelled`, `no_show` and `attended` are recorded in the same ledger and end the pre-visit
    sequence, the first two starting a re-booking one.

    A reference seen before is a retry ("duplicate"), except a `booked` notice for a known
    booking with another visit time: many booking systems keep the id when a visit moves, so
    that is a reschedule (_reschedule), recorded as a `rescheduled` event and moving the visit.
    """
    if reference:
        recorded = _recorded(session, kind, reference)
        if recorded is not None and kind == "booked" and appointment_at is not None:
            return _reschedule(session, contact, recorded, at, source, reference, appointment_at)
        if recorded is not None:
            return BookingEventResult("duplicate")
    exited: list[str] = []
    if kind == "booked":
        booked = mark_booked(
            session,
            contact,
            at=at,
            source=source,
            reference=reference,
            appointment_at=appointment_at,
        )
        exited += booked.exited_campaigns
    else:
        session.add(
            Event(
                kind=kind,
                occurred_at=at,
                contact_id=contact.id,
                provider="booking" if reference else None,
                provider_event_id=event_key(kind, reference) if reference else None,
                data={"source": source} | _appointment(appointment_at),
            )
        )
    reaction = react_to_booking_event(session, contact, kind, at=at, appointment_at=appointment_at)
    return BookingEventResult(kind, (*exited, *reaction.ended), reaction.enrolled, reaction.moved)


def _reschedule(
    session: Session,
    contact: Contact,
    booked: Event,
    at: datetime,
    source: str,
    reference: str,
    visit: datetime,
) -> BookingEventResult:
    """A `booked` notice for booking `reference`, recorded before as `booked`, now saying the
    visit is at `visit`.

    Its newest notice so far (the booking, or the last reschedule of it) says where the visit
    is. The same time again is a retry: "duplicate". Another time moves the visit only when
    this notice happened after that newest one, by its own timestamp (the webhook's
    `booked_at`, the API's `occurred_at`: `at`): a late retry of the original notice, which
    carries the original's time, must not move the visit back. A notice without a timestamp is
    timed on arrival, so for those the order of arrival decides. An older or simultaneous one
    changes nothing ("duplicate"). A move is a `rescheduled` event (not another `booked`: the
    funnel counts bookings), then campaigns.triggers reacts as to a new booking with that
    visit time: the running pre-visit entry's visit moves (move_visit)."""
    newest = booked
    for event in session.scalars(
        select(Event).where(Event.contact_id == contact.id, Event.kind == RESCHEDULED)
    ):
        if event.data.get("reference") == reference and event.occurred_at >= newest.occurred_at:
            newest = event
    if _visit(newest) == visit or at <= newest.occurred_at:
        return BookingEventResult("duplicate")
    session.add(
        Event(
            kind=RESCHEDULED,
            occurred_at=at,
            contact_id=contact.id,
            provider="booking",
            data={"source": source, "reference": reference} | _appointment(visit),
        )
    )
    reaction = react_to_booking_event(session, contact, "booked", at=at, appointment_at=visit)
    return BookingEventResult("booked", reaction.ended, reaction.enrolled, reaction.moved)


def _visit(event: Event) -> datetime | None:
    written = (event.data or {}).get("appointment_at")
    return datetime.fromisoformat(written) if written else None


def _appointment(at: datetime | None) -> dict[str, str]:
    return {} if at is None else {"appointment_at": at.isoformat()}
