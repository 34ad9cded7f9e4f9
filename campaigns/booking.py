"""Marking a contact booked: one rule shared by the booking webhook and `nurture contacts booked`.

A person who booked must not get another "book your consultation" nudge, so every active
enrollment whose sequence exits on booking ends now, in the same transaction; the dispatcher then
skips any step already planned ("exited: booked") instead of sending it.

The booking is credited to the last message the person clicked within `CLICK_CREDIT_WINDOW`
(its campaign and step go on the `booked` event, which the funnel counts), so a report shows
which message brought the booking in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.definitions import Sequence
from campaigns.enrollment import active_enrollments, exit_enrollment
from contacts.normalize import normalize_email, normalize_phone
from core.errors import InputError, NotFound
from storage.models import Campaign, Contact, Event

#: A booking this long after a click is still that message's doing; an older click (or none)
#: leaves the booking on no campaign. Two weeks covers "read it, thought about it, called".
CLICK_CREDIT_WINDOW = timedelta(days=14)


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
            data={"source": source, "first": first, "exited": exited},
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
    key = f"booking:{reference}"
    return session.scalar(select(Event.id).where(Event.provider_event_id == key)) is not None
