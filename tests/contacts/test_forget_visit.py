"""Forget takes the booked visit's time with it (a visit to a spine clinic is health-adjacent):
after a booking, a cancellation, a second booking moved under its own reference and a reminder
planned for it, no column of any table holds a visit's time, as a time or as text."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, String, Text, select

from campaigns.booking import record_booking_event
from campaigns.definitions import load_sequence
from campaigns.lifecycle import launch
from contacts.forget import forget_contact
from core.clock import FrozenClock
from nurture.app import NurtureApp
from scheduler.planner import Planner
from storage.db import transaction
from storage.models import Base, Contact, Message, MessageState

#: Thursday 09:00, then Tuesday 11:00 and Wednesday 20:00 in New York (the reminder of the
#: last one is capped just before it).
VISITS = (
    datetime(2026, 12, 10, 14, 0, tzinfo=UTC),
    datetime(2026, 12, 15, 16, 0, tzinfo=UTC),
    datetime(2026, 12, 17, 1, 0, tzinfo=UTC),
)


def _event(app: NurtureApp, contact_id: int, kind: Any, ref: str, visit: datetime | None) -> Any:
    with transaction(app.sessions) as session:
        return record_booking_event(
            session,
            session.get_one(Contact, contact_id),
            kind,
            at=app.clock(),
            source="test",
            reference=ref,
            appointment_at=visit,
        )


def _visit_traces(app: NurtureApp) -> list[tuple[str, str, Any]]:
    """(table, column, value) of every time within a minute of a visit, and of every text or
    JSON value that writes a visit's time down."""
    found: list[tuple[str, str, Any]] = []
    written = [visit.isoformat()[:16] for visit in VISITS]
    with app.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for column in table.columns:
                for (value,) in connection.execute(select(column).where(column.is_not(None))):
                    if isinstance(value, datetime):
                        if value.tzinfo is None:
                            value = value.replace(tzinfo=UTC)
                        if any(abs(value - visit) < timedelta(minutes=1) for visit in VISITS):
                            found.append((table.name, column.name, value))
                    elif isinstance(column.type, String | Text | JSON):
                        text = value if isinstance(value, str) else json.dumps(value)
                        if any(stamp in text for stamp in written):
                            found.append((table.name, column.name, value))
    return found


def test_forget_leaves_no_visit_time_anywhere(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock
) -> None:
    with transaction(nurture_app.sessions) as session:
        launch(
            session,
            load_sequence("pre-visit"),
            now=nurture_app.clock(),
            settings=nurture_app.settings,
        )
    contact = make_contact(phone="+13105550131", sms=True, timezone="America/New_York")
    _event(nurture_app, contact, "booked", "B-1", VISITS[0])
    _event(nurture_app, contact, "cancelled", "B-1", None)  # that entry ends, its visit kept
    assert _event(nurture_app, contact, "booked", "B-2", VISITS[1]).enrolled_campaigns == (
        "pre-visit",
    )
    frozen_clock.advance(hours=1)
    assert _event(nurture_app, contact, "booked", "B-2", VISITS[2]).moved_campaigns == (
        "pre-visit",
    )
    planner = Planner(nurture_app.settings, nurture_app.sessions, nurture_app.clock)
    planner.tick()
    with transaction(nurture_app.sessions) as session:
        for message in session.scalars(select(Message).where(Message.contact_id == contact)):
            message.state, message.sent_at = MessageState.SENT, nurture_app.clock()
    planner.tick()
    with transaction(nurture_app.sessions) as session:
        waiting = session.scalars(
            select(Message.due_at).where(
                Message.contact_id == contact, Message.state == MessageState.PLANNED
            )
        ).all()
    assert waiting  # the moved visit's reminder, due the day before it
    before = {(table, column) for table, column, _ in _visit_traces(nurture_app)}
    assert {("enrollments", "appointment_at"), ("messages", "not_after"),
            ("events", "data")} <= before  # fmt: skip
    with transaction(nurture_app.sessions) as session:
        forget_contact(
            session,
            session.get_one(Contact, contact),
            requested_by="staff",
            now=nurture_app.clock(),
            files=[],
        )
    assert _visit_traces(nurture_app) == []
    with transaction(nurture_app.sessions) as session:
        skipped = session.execute(
            select(Message.due_at, Message.skip_reason).where(
                Message.contact_id == contact, Message.sent_at.is_(None)
            )
        ).all()
    forgotten_at = nurture_app.clock().replace(tzinfo=None)
    assert len(skipped) == len(waiting)
    assert {(due.replace(tzinfo=None), why) for due, why in skipped} == {
        (forgotten_at, "contact forgotten")
    }  # no reminder's due time left to tell the visit by
