"""Sequences started by a booking event: `booked` starts the pre-visit one, `no_show` and
`cancelled` a gentle re-booking one (issue 18, "journeys that react").

One function, `react_to_booking_event`, called by campaigns.booking.record_booking_event, which
every path that learns of a booking event uses (the booking webhook, the REST API, the command
line). It does two things, in the caller's transaction:

1. It ends what the event makes moot. A new booking ends a re-booking sequence (its goal is
   met); a cancellation, a no-show or an attended visit ends the pre-visit sequence (there is no
   visit to prepare for). The nurture's own exit on booking stays campaigns.booking.mark_booked's.
2. It enrolls the contact (campaigns.enrollment.enroll_contact) in each running campaign whose
   sequence the event starts, when:
   - the contact holds every consent the sequence's audience requires and is not suppressed on
     those channels (or, when it requires none, is reachable on one of its channels): an event is
     no consent to message someone;
   - they are in no other active sequence of the same trigger ("one sequence of a kind at a
     time": two re-bookings at once would nag);
   - they never entered this campaign, or their last entry ended and began `reenter_after` ago;
     an entry whose visit never happened (ended by `cancelled` or `no_show`) does not count, so
     a rescheduled visit, or the one booked after a no-show, gets its own pre-visit reminder.

A visit moved without a cancellation (another `booked` event with a new `appointment_at` while
the pre-visit sequence still runs, under a new reference or, newer than the booking's last notice,
under its own: campaigns.booking._reschedule) moves the running entry's visit (`move_visit`): a
reminder timed before the visit and not yet planned will be timed from the new visit; one planned
but not yet taken by a worker is taken back, and the planner plans it again (the same rules: the
contact's zone, the step's window, quiet hours, max_lateness, never at or after the visit); one
already sent, or being sent, stays as it is, since a reminder is never sent twice.

A cancelled booking does not leave the person in limbo: the nurture ended when they booked (a
person who booked once is past "book your consultation"), so a `cancelled` campaign takes them,
like a no-show, into a re-booking sequence (campaigns/rebooking-cancelled.toml).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from campaigns.definitions import Sequence
from campaigns.enrollment import active_enrollments, enroll_contact, exit_enrollment
from contacts.reachability import contact_reachable
from storage.models import (
    Campaign,
    CampaignState,
    Contact,
    Enrollment,
    Message,
    MessageState,
)

BookingEvent = Literal["booked", "cancelled", "no_show", "attended"]

#: Exit reasons of an entry whose visit never happened: it does not hold back the next entry.
VISIT_NEVER_HAPPENED = frozenset({"cancelled", "no_show"})

#: Which started sequences an event ends, by the trigger that started them.
ENDS: dict[str, frozenset[str]] = {
    "booked": frozenset({"cancelled", "no_show"}),
    "cancelled": frozenset({"booked"}),
    "no_show": frozenset({"booked"}),
    "attended": frozenset({"booked"}),
}


@dataclass(frozen=True)
class Reaction:
    ended: tuple[str, ...]  # campaigns the event ended
    enrolled: tuple[str, ...]  # campaigns the event started
    refused: tuple[tuple[str, str], ...]  # (campaign, why not enrolled)
    moved: tuple[str, ...] = ()  # campaigns whose running entry took the new visit time


def react_to_booking_event(
    session: Session,
    contact: Contact,
    event: BookingEvent,
    *,
    at: datetime,
    appointment_at: datetime | None = None,
) -> Reaction:
    """End the sequences `event` makes moot, then start those it triggers (module docstring)."""
    _lock(session, contact)
    ended, moved = [], []
    in_sequence: dict[str, list[str]] = {}  # trigger -> campaigns the contact is still in
    for enrollment in active_enrollments(session, contact.id):
        campaign = session.get_one(Campaign, enrollment.campaign_id)
        sequence = Sequence.from_snapshot(campaign.definition)
        if sequence.trigger in ENDS[event]:
            exit_enrollment(enrollment, event, at)
            ended.append(campaign.name)
            continue
        in_sequence.setdefault(sequence.trigger, []).append(campaign.name)
        if event == sequence.trigger == "booked" and appointment_at is not None:
            if move_visit(session, enrollment, sequence, appointment_at):
                moved.append(campaign.name)
    enrolled, refused = [], []
    for campaign, sequence in _started_by(session, event):
        reason = why_not_enrolled(session, contact, sequence, in_sequence.get(event, []))
        if reason is None and not enroll_contact(
            session,
            campaign,
            contact.id,
            at=at,
            again_after=_reentry(session, campaign, contact, sequence),
            appointment_at=appointment_at,
        ):
            reason = "entered before (re-entry not yet allowed)"
        if reason is None:
            enrolled.append(campaign.name)
            in_sequence.setdefault(event, []).append(campaign.name)
        else:
            refused.append((campaign.name, reason))
    session.flush()
    return Reaction(tuple(ended), tuple(enrolled), tuple(refused), tuple(moved))


def move_visit(
    session: Session, enrollment: Enrollment, sequence: Sequence, visit: datetime
) -> bool:
    """The running entry's visit is now `visit` (module docstring); False when it already was.

    A step timed `before_appointment` that is planned (the enrollment's latest step) and still
    `planned` is deleted and the enrollment steps back to the step planned before it, so the
    planner plans it again from the new visit. The delete names the state: a message a worker
    claimed meanwhile (PostgreSQL waits for its row lock, then re-reads the state) is left
    alone. After a branching step the planner would decide the branch again, so such a
    reminder keeps its time (pre-visit sequences do not branch)."""
    if enrollment.appointment_at == visit:
        return False
    enrollment.appointment_at = visit
    index = enrollment.planned_step
    if index < 0 or sequence.steps[index].before_appointment is None:
        return True  # not planned yet: the planner reads the new visit when it plans it
    planned = session.execute(
        select(Message.id, Message.step_index)
        .where(Message.enrollment_id == enrollment.id)
        .order_by(Message.id.desc())
        .limit(2)
    ).all()
    if not planned or planned[0].step_index != index:
        return True
    before = planned[1].step_index if len(planned) > 1 else -1
    if before >= 0 and sequence.steps[before].then is not None:
        return True
    taken_back = session.connection().execute(  # a Connection's result is a CursorResult
        delete(Message).where(Message.id == planned[0].id, Message.state == MessageState.PLANNED)
    )
    if taken_back.rowcount:
        enrollment.planned_step = before
    return True


def why_not_enrolled(
    session: Session, contact: Contact, sequence: Sequence, same_kind: list[str]
) -> str | None:
    """Why this contact may not enter this event-started sequence now; None: they may."""
    if contact.erased_at is not None:
        return "erased"
    if same_kind:
        return f"already in {same_kind[0]} (one sequence of a kind at a time)"
    for channel in sequence.audience.require_consent:
        if not contact_reachable(session, contact, channel):
            return f"no {channel} consent or suppressed"
    if not any(
        contact_reachable(session, contact, channel) for channel in sorted(sequence.channels)
    ):
        return "no consent on any of its channels, or suppressed"
    return None


def _reentry(
    session: Session, campaign: Campaign, contact: Contact, sequence: Sequence
) -> timedelta | None:
    """How long after their last entry the contact may enter again (module docstring)."""
    last_exit = session.scalar(
        select(Enrollment.exit_reason)
        .where(Enrollment.campaign_id == campaign.id, Enrollment.contact_id == contact.id)
        .order_by(Enrollment.entry.desc())
        .limit(1)
    )
    return timedelta(0) if last_exit in VISIT_NEVER_HAPPENED else sequence.reenter_after


def _started_by(session: Session, event: str) -> list[tuple[Campaign, Sequence]]:
    """Running campaigns whose sequence this event starts (a handful: read and filtered here)."""
    running = session.scalars(
        select(Campaign).where(Campaign.state == CampaignState.ACTIVE).order_by(Campaign.id)
    )
    pairs = [(campaign, Sequence.from_snapshot(campaign.definition)) for campaign in running]
    return [(campaign, sequence) for campaign, sequence in pairs if sequence.trigger == event]


def _lock(session: Session, contact: Contact) -> None:
    """Two events for one person at once (a webhook and an API call) take turns here, so "one
    sequence of a kind at a time" holds: on PostgreSQL the contact's row is locked until commit;
    SQLite already runs one writing transaction at a time (storage.db.transaction)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Contact.id).where(Contact.id == contact.id).with_for_update())
