"""The planner: one row per (enrollment, step), due times from the previous send, windows and
quiet hours in the contact's zone (across a daylight-saving change), no step after an exit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from campaigns import lifecycle
from campaigns.definitions import Sequence
from core.clock import FrozenClock
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import Contact, Enrollment, EnrollmentState, Message, MessageState

LA = ZoneInfo("America/Los_Angeles")


def _sequence() -> Sequence:
    return Sequence.model_validate(
        {
            "name": "planner-test",
            "title": "planner test",
            "template_folder": "spasm-relief",
            "steps": [
                {"name": "hello", "channel": "email", "template": "01-welcome"},
                {
                    "name": "text",
                    "channel": "sms",
                    "template": "02-cycle",
                    "delay": "3d",
                    "window": {"days": "mon-fri", "start": "10:00", "end": "18:00"},
                },
            ],
        }
    )


def test_next_step_counts_from_the_send_and_keeps_local_hours_across_dst(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock
) -> None:
    # Friday 2026-10-30 19:00 LA (PDT); the text is due 3 days later, after clocks fall back.
    frozen_clock.now = datetime(2026, 10, 30, 19, 0, tzinfo=LA).astimezone(UTC)
    make_contact(phone="+13105550111", sms=True)
    with transaction(nurture_app.sessions) as session:
        lifecycle.launch(session, _sequence(), now=frozen_clock())
    assert nurture_app.planner.tick().planned == 1
    assert nurture_app.planner.tick().planned == 0  # nothing new until the email settles
    assert nurture_app.dispatcher.tick().sent == 1
    frozen_clock.advance(minutes=5)
    assert nurture_app.planner.tick().planned == 1
    with transaction(nurture_app.sessions, immediate=False) as session:
        text = session.scalars(select(Message).where(Message.step_index == 1)).one()
    local = text.due_at.astimezone(LA)
    # Sent Fri 19:00 PDT + 3 days = Mon 19:00 PST, past the window: Tue 10:00 PST.
    assert (local.strftime("%a"), local.hour, local.minute) == ("Tue", 10, 0)
    assert local.utcoffset() == timedelta(hours=-8)
    assert text.not_after is not None and text.not_after > text.due_at


def test_a_booked_contact_exits_before_the_next_step_is_planned(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock
) -> None:
    booked = make_contact(phone="+13105550112", sms=True)
    stays = make_contact(phone="+13105550113", sms=True)
    with transaction(nurture_app.sessions) as session:
        lifecycle.launch(session, _sequence(), now=frozen_clock())
    nurture_app.planner.tick()
    nurture_app.dispatcher.tick()
    with transaction(nurture_app.sessions) as session:
        session.get_one(Contact, booked).booked_at = frozen_clock()
    result = nurture_app.planner.tick()
    assert result.exited == {"booked": 1} and result.planned == 1
    with transaction(nurture_app.sessions, immediate=False) as session:
        states = dict(session.execute(select(Enrollment.contact_id, Enrollment.state)).all())
        planned = session.scalar(select(func.count()).where(Message.step_index == 1))
    assert states[booked] == EnrollmentState.EXITED and states[stays] == EnrollmentState.ACTIVE
    assert planned == 1


def test_planning_twice_never_makes_a_second_row(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock
) -> None:
    for n in range(5):
        make_contact(phone=f"+1310555012{n}", sms=True)
    with transaction(nurture_app.sessions) as session:
        lifecycle.launch(session, _sequence(), now=frozen_clock())
    nurture_app.planner.tick()
    nurture_app.planner.tick()
    with transaction(nurture_app.sessions, immediate=False) as session:
        rows = session.execute(
            select(Message.enrollment_id, Message.step_index, Message.state)
        ).all()
    assert len(rows) == 5 and all(state == MessageState.PLANNED for *_, state in rows)


def test_the_walk_for_ready_enrollments_leaves_the_sqlite_write_lock_free(
    h: Any, sqlite_app: NurtureApp, frozen_clock: FrozenClock, monkeypatch: Any
) -> None:
    """Walking a big campaign takes a while; the web server's unsubscribes need the write lock
    meanwhile. An enrollment that exits between the walk and the write is not planned."""
    import sqlite3

    frozen_clock.now = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
    h.seed(sqlite_app, emails=2, due=frozen_clock.now)
    with transaction(sqlite_app.sessions) as session:
        staying, leaving = session.scalars(select(Enrollment.contact_id).order_by(Enrollment.id))
        session.execute(Message.__table__.delete())  # as if just enrolled: nothing planned yet
        session.execute(Enrollment.__table__.update().values(planned_step=-1))
    database = sqlite_app.engine.url.database
    planner = sqlite_app.planner
    walk = planner._ready_ids
    lock_free: list[bool] = []

    def walking(session: Any, after_id: int) -> Any:
        found = walk(session, after_id)
        if found:
            other = sqlite3.connect(database, timeout=0, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")
                other.execute(  # meanwhile, one contact leaves (as a booking would make them)
                    "UPDATE enrollments SET state = 'exited', exit_reason = 'booked' "
                    "WHERE contact_id = ?",
                    (leaving,),
                )
                other.execute("COMMIT")
                lock_free.append(True)
            except sqlite3.OperationalError:
                lock_free.append(False)
            finally:
                other.close()
        return found

    monkeypatch.setattr(planner, "_ready_ids", walking)
    assert planner.tick().planned == 1
    assert lock_free and all(lock_free)
    with transaction(sqlite_app.sessions, immediate=False) as session:
        assert session.scalars(select(Message.contact_id)).all() == [staying]
