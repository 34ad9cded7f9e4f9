"""A pre-visit reminder timed `before_appointment`: due a day before the booked visit, moved into
its window in the contact's zone; the ordinary delay when the booking gave no time; too late to
matter when the booking came after its time (scheduler.appointments); planned again for the new
day when the visit is rebooked before it goes, and never twice (campaigns.triggers.move_visit)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from campaigns.booking import record_booking_event
from campaigns.definitions import Sequence, load_sequence
from campaigns.lifecycle import launch
from core.clock import FrozenClock
from nurture.app import NurtureApp
from scheduler.planner import Planner
from storage.db import transaction
from storage.models import Contact, Enrollment, Message, MessageState


def _book(app: NurtureApp, contact_id: int, visit: datetime | None) -> None:
    with transaction(app.sessions) as session:
        contact = session.get_one(Contact, contact_id)
        result = record_booking_event(
            session, contact, "booked", at=app.clock(), source="test", appointment_at=visit
        )
    assert result.enrolled_campaigns == ("pre-visit",)


def _reminder(app: NurtureApp, contact_id: int) -> Message:
    """Plan, send the first email, plan again: the reminder text's row."""
    planner = Planner(app.settings, app.sessions, app.clock)
    planner.tick()
    with transaction(app.sessions) as session:
        first = session.scalars(select(Message).where(Message.contact_id == contact_id)).one()
        first.state, first.sent_at = MessageState.SENT, app.clock()
    planner.tick()
    with app.sessions() as session:
        return session.scalars(
            select(Message).where(Message.contact_id == contact_id, Message.step_index == 1)
        ).one()


def _launched(app: NurtureApp) -> None:
    with transaction(app.sessions) as session:
        launch(session, load_sequence("pre-visit"), now=app.clock(), settings=app.settings)


def test_the_reminder_is_due_the_day_before_the_visit_in_the_contacts_window(
    nurture_app: NurtureApp, make_contact: Any
) -> None:
    _launched(nurture_app)
    contact = make_contact(phone="+13105550111", sms=True, timezone="America/New_York")
    # Visit Friday 2026-12-04 09:00 in New York: a day before is Thursday 09:00, before the
    # window's 10:00, so the text is due Thursday 10:00 New York time (15:00 UTC).
    _book(nurture_app, contact, datetime(2026, 12, 4, 14, 0, tzinfo=UTC))
    reminder = _reminder(nurture_app, contact)
    assert (reminder.channel, reminder.state) == ("sms", "planned")
    assert reminder.due_at == datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
    assert reminder.not_after == reminder.due_at + timedelta(hours=12)


def test_without_a_visit_time_the_reminder_keeps_its_delay(
    nurture_app: NurtureApp, make_contact: Any
) -> None:
    _launched(nurture_app)
    contact = make_contact(phone="+13105550112", sms=True)
    _book(nurture_app, contact, None)
    reminder = _reminder(nurture_app, contact)
    # Sent Tuesday 10:00 in Los Angeles (the frozen clock): a day later, inside 10:00-18:00.
    assert reminder.due_at == nurture_app.clock() + timedelta(days=1)


def test_a_booking_made_hours_before_the_visit_gets_no_late_reminder(
    nurture_app: NurtureApp, make_contact: Any
) -> None:
    _launched(nurture_app)
    contact = make_contact(phone="+13105550113", sms=True)
    _book(nurture_app, contact, nurture_app.clock() + timedelta(hours=3))
    reminder = _reminder(nurture_app, contact)
    # Its time (a day before the visit) passed long ago: past its lateness, never sent.
    assert reminder.not_after is not None and reminder.not_after < nurture_app.clock()


def _rebook(app: NurtureApp, contact_id: int, visit: datetime | None) -> tuple[str, ...]:
    """A second booking (a new reference) for the same person: the visit rebooked, not cancelled."""
    with transaction(app.sessions) as session:
        contact = session.get_one(Contact, contact_id)
        result = record_booking_event(
            session, contact, "booked", at=app.clock(), source="test", appointment_at=visit
        )
    assert result.enrolled_campaigns == ()  # still in the pre-visit: no second entry
    return result.moved_campaigns


def _reminders(app: NurtureApp, contact_id: int) -> list[Message]:
    Planner(app.settings, app.sessions, app.clock).tick()
    with app.sessions() as session:
        return list(
            session.scalars(
                select(Message).where(Message.contact_id == contact_id, Message.step_index == 1)
            )
        )


def _visit_of(app: NurtureApp, contact_id: int) -> datetime | None:
    with app.sessions() as session:
        return session.scalar(
            select(Enrollment.appointment_at).where(Enrollment.contact_id == contact_id)
        )


def test_a_rebooked_visit_moves_its_planned_reminder_into_the_window_before_the_new_day(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock
) -> None:
    _launched(nurture_app)
    contact = make_contact(phone="+13105550114", sms=True, timezone="America/New_York")
    _book(nurture_app, contact, datetime(2026, 12, 4, 14, 0, tzinfo=UTC))  # Fri 09:00 NY
    assert _reminder(nurture_app, contact).due_at == datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
    frozen_clock.advance(hours=2)
    # Moved to Wednesday 07:00 in New York: a day before is Tuesday 07:00, night for a text
    # there and before the step's 10:00: due Tuesday 10:00 New York time (15:00 UTC).
    new_visit = datetime(2026, 12, 9, 12, 0, tzinfo=UTC)
    assert _rebook(nurture_app, contact, new_visit) == ("pre-visit",)
    [reminder] = _reminders(nurture_app, contact)
    assert (reminder.state, reminder.due_at) == (
        "planned",
        datetime(2026, 12, 8, 15, 0, tzinfo=UTC),
    )
    assert reminder.not_after == reminder.due_at + timedelta(hours=12)
    assert _visit_of(nurture_app, contact) == new_visit
    # The same time again (a second notice of the new booking) moves nothing.
    assert _rebook(nurture_app, contact, new_visit) == ()
    assert [row.id for row in _reminders(nurture_app, contact)] == [reminder.id]


def test_a_visit_moved_before_its_reminder_is_planned_times_it_from_the_new_visit(
    nurture_app: NurtureApp, make_contact: Any
) -> None:
    _launched(nurture_app)
    contact = make_contact(phone="+13105550115", sms=True, timezone="America/New_York")
    _book(nurture_app, contact, datetime(2026, 12, 4, 14, 0, tzinfo=UTC))
    # Rebooked while the first email is still to go: the reminder is planned later, from the
    # new visit (Tuesday 15:00 in New York: Monday 15:00 there, inside 10:00-18:00).
    assert _rebook(nurture_app, contact, datetime(2026, 12, 8, 20, 0, tzinfo=UTC)) == ("pre-visit",)
    assert _reminder(nurture_app, contact).due_at == datetime(2026, 12, 7, 20, 0, tzinfo=UTC)


@pytest.mark.parametrize("state", [MessageState.SENT, MessageState.CLAIMED])
def test_a_reminder_sent_or_being_sent_is_never_planned_again(
    nurture_app: NurtureApp, make_contact: Any, state: MessageState
) -> None:
    _launched(nurture_app)
    contact = make_contact(phone="+13105550116", sms=True, timezone="America/New_York")
    _book(nurture_app, contact, datetime(2026, 12, 4, 14, 0, tzinfo=UTC))
    first = _reminder(nurture_app, contact)
    with transaction(nurture_app.sessions) as session:  # sent, or a worker took it to send
        session.get_one(Message, first.id).state = state
    new_visit = datetime(2026, 12, 9, 12, 0, tzinfo=UTC)
    assert _rebook(nurture_app, contact, new_visit) == ("pre-visit",)
    [reminder] = _reminders(nurture_app, contact)
    assert (reminder.id, reminder.state, reminder.due_at) == (first.id, state, first.due_at)
    assert _visit_of(nurture_app, contact) == new_visit


def _launched_on_weekdays(app: NurtureApp) -> None:
    """The pre-visit sequence with its reminder's window Monday to Friday, 10:00-18:00."""
    snapshot = load_sequence("pre-visit").snapshot()
    snapshot["steps"][1]["window"] = {"days": "mon-fri", "start": "10:00", "end": "18:00"}
    with transaction(app.sessions) as session:
        launch(session, Sequence.from_snapshot(snapshot), now=app.clock(), settings=app.settings)


def test_a_reminder_the_window_pushes_past_the_visit_is_skipped_not_sent_after_it(
    nurture_app: NurtureApp, make_contact: Any
) -> None:
    _launched_on_weekdays(nurture_app)
    contact = make_contact(phone="+13105550117", sms=True, timezone="America/New_York")
    # Visit Monday 2026-12-07 09:00 in New York: a day before is Sunday, outside the window,
    # whose next opening is Monday 10:00, an hour after the visit.
    visit = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
    _book(nurture_app, contact, visit)
    reminder = _reminder(nurture_app, contact)
    assert (reminder.state, reminder.skip_reason) == ("skipped", "visit passed")
    # Skipped when planned, so due then: not waiting in the reports, and no hint of the visit.
    assert reminder.due_at.replace(tzinfo=None) == nurture_app.clock().replace(tzinfo=None)


def test_a_reminder_due_shortly_before_the_visit_may_not_go_late_past_it(
    nurture_app: NurtureApp, make_contact: Any
) -> None:
    _launched_on_weekdays(nurture_app)
    contact = make_contact(phone="+13105550118", sms=True, timezone="America/New_York")
    # Visit Monday 11:00 in New York: the reminder lands on Monday 10:00, an hour before it;
    # its 12 hours of lateness end at the visit, not in the evening after it.
    visit = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)
    _book(nurture_app, contact, visit)
    reminder = _reminder(nurture_app, contact)
    assert (reminder.state, reminder.due_at) == (
        "planned",
        datetime(2026, 12, 7, 15, 0, tzinfo=UTC),
    )
    assert reminder.not_after is not None and reminder.due_at < reminder.not_after < visit
    assert visit - reminder.not_after < timedelta(seconds=1)


def test_the_planner_writes_messages_as_appointments_reads_them() -> None:
    from scheduler import planner
    from scheduler.appointments import MESSAGE_LAYOUT

    assert planner._MESSAGE_COLUMNS == MESSAGE_LAYOUT
