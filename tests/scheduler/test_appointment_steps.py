"""A pre-visit reminder timed `before_appointment`: due a day before the booked visit, moved into
its window in the contact's zone; the ordinary delay when the booking gave no time; too late to
matter when the booking came after its time (scheduler.appointments)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from campaigns.booking import record_booking_event
from campaigns.definitions import load_sequence
from campaigns.lifecycle import launch
from nurture.app import NurtureApp
from scheduler.planner import Planner
from storage.db import transaction
from storage.models import Contact, Message, MessageState


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
