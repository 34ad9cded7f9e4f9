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
from storage.models import Campaign, Contact, Enrollment, EnrollmentState, Message, MessageState

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

    def walking(session: Any, after_id: int, now: datetime) -> Any:
        found = walk(session, after_id, now)
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


def _one_step(channel: str, **step: Any) -> Sequence:
    template = "01-welcome" if channel == "email" else "02-cycle"
    return Sequence.model_validate(
        {
            "name": f"one-{channel}",
            "title": "one step",
            "template_folder": "spasm-relief",
            "steps": [{"name": "only", "channel": channel, "template": template, **step}],
        }
    )


def _due_by_zone(app: NurtureApp) -> dict[str, set[datetime]]:
    with transaction(app.sessions, immediate=False) as session:
        rows = session.execute(
            select(Contact.timezone, Message.due_at).join(Contact, Contact.id == Message.contact_id)
        ).all()
    found: dict[str, set[datetime]] = {}
    for zone, due in rows:
        found.setdefault(zone, set()).add(due)
    return found


def _planner(app: NurtureApp, batch_size: int, clock: FrozenClock) -> Any:
    """Another worker's planner: its own engine (connections) on the same database."""
    from core.settings import load_settings
    from scheduler.planner import Planner
    from storage.db import make_engine, session_factory

    url = app.engine.url.render_as_string(hide_password=False)
    settings = load_settings(database={"url": url}, scheduler={"batch_size": batch_size})
    return Planner(settings, session_factory(make_engine(url), app.suppression_hasher), clock)


def test_a_launch_is_planned_in_each_contacts_zone_and_window(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock
) -> None:
    """Tuesday 18:00 UTC; window 09:00-17:00 local on weekdays. Batches of 4 mix the zones, so
    each zone's due time must come from its own group, not from the batch's first contact."""
    zones = ["America/Los_Angeles", "America/New_York", "Pacific/Honolulu", "Europe/London"]
    for n in range(12):
        make_contact(timezone=zones[n % 4])
    window = {"days": "mon-fri", "start": "09:00", "end": "17:00"}
    with transaction(nurture_app.sessions) as session:
        lifecycle.launch(session, _one_step("email", window=window), now=frozen_clock())
    planner = _planner(nurture_app, 4, frozen_clock)
    assert planner.tick().planned == 12
    now = frozen_clock()
    assert _due_by_zone(nurture_app) == {
        "America/Los_Angeles": {now},  # 10:00 PST: inside the window
        "America/New_York": {now},  # 13:00 EST
        "Pacific/Honolulu": {datetime(2026, 12, 1, 9, 0, tzinfo=ZoneInfo("Pacific/Honolulu"))},
        "Europe/London": {datetime(2026, 12, 2, 9, 0, tzinfo=ZoneInfo("Europe/London"))},
    }
    with transaction(nurture_app.sessions, immediate=False) as session:
        late = session.execute(select(Message.due_at, Message.not_after)).all()
    assert all(not_after == due + timedelta(hours=48) for due, not_after in late)


def test_a_text_launched_at_night_waits_for_8am_local_across_the_spring_change(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock
) -> None:
    """TCPA quiet hours: launched Saturday 2027-03-13 22:00 PST, the texts wait for Sunday 08:00
    local, which in Los Angeles is PDT (clocks went forward at 02:00): 15:00 UTC, not 16:00."""
    frozen_clock.now = datetime(2027, 3, 13, 22, 0, tzinfo=LA).astimezone(UTC)
    for n in range(3):
        make_contact(phone=f"+1310555014{n}", sms=True)
    make_contact(phone="+12125550150", sms=True, timezone="America/New_York")
    with transaction(nurture_app.sessions) as session:
        lifecycle.launch(session, _one_step("sms"), now=frozen_clock())
    assert nurture_app.planner.tick().planned == 4
    assert _due_by_zone(nurture_app) == {
        "America/Los_Angeles": {datetime(2027, 3, 14, 15, 0, tzinfo=UTC)},
        "America/New_York": {datetime(2027, 3, 14, 12, 0, tzinfo=UTC)},  # 08:00 EDT
    }


def test_a_window_that_never_opens_skips_the_step_with_its_reason(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock
) -> None:
    """A text window entirely inside the quiet hours (22:00-23:00) has no send time."""
    make_contact(phone="+13105550160", sms=True)
    window = {"days": "mon-sun", "start": "22:00", "end": "23:00"}
    with transaction(nurture_app.sessions) as session:
        sequence = _one_step("sms", window=window)
        session.add(Campaign(name=sequence.name, definition=sequence.snapshot(),
                             state="active", starts_at=frozen_clock(),
                             launched_at=frozen_clock()))  # fmt: skip
        session.flush()
        from campaigns.enrollment import enroll_audience

        campaign = session.scalars(select(Campaign)).one()
        enroll_audience(session, campaign, at=frozen_clock())
    assert nurture_app.planner.tick().planned == 1
    with transaction(nurture_app.sessions, immediate=False) as session:
        message = session.scalars(select(Message)).one()
    assert message.state == MessageState.SKIPPED
    assert message.skip_reason == "no allowed send time in the step's window"


def test_two_planners_at_once_plan_each_enrollment_exactly_once(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock
) -> None:
    """Two workers' planners tick together on one database (row locks with SKIP LOCKED on
    PostgreSQL, the write lock on SQLite; the unique key and ON CONFLICT DO NOTHING below)."""
    import threading

    for _ in range(40):
        make_contact()
    with transaction(nurture_app.sessions) as session:
        lifecycle.launch(session, _one_step("email"), now=frozen_clock())
    planners = [_planner(nurture_app, 3, frozen_clock) for _ in range(2)]
    start = threading.Barrier(2)
    results: list[Any] = []

    def run(planner: Any) -> None:
        start.wait()
        results.append(planner.tick())

    threads = [threading.Thread(target=run, args=(planner,)) for planner in planners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for planner in planners:
        planner.sessions.kw["bind"].dispose()
    assert sum(result.planned for result in results) == 40
    with transaction(nurture_app.sessions, immediate=False) as session:
        per_enrollment = session.execute(
            select(Message.enrollment_id, func.count()).group_by(Message.enrollment_id)
        ).all()
        steps = set(session.scalars(select(Enrollment.planned_step)))
    assert len(per_enrollment) == 40 and {count for _, count in per_enrollment} == {1}
    assert steps == {0}


def test_a_later_step_counts_from_each_contacts_own_send(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock
) -> None:
    """Two contacts sent at the same instant share a due time, a third has its own: one batch
    writes both kinds (shared rows set-based, the lone one among computed rows) alike."""
    for _ in range(3):
        make_contact()
    sequence = Sequence.model_validate(
        {
            "name": "two-emails",
            "title": "two emails",
            "template_folder": "spasm-relief",
            "steps": [
                {"name": "a", "channel": "email", "template": "01-welcome"},
                {"name": "b", "channel": "email", "template": "01-welcome", "delay": "2d"},
            ],
        }
    )
    with transaction(nurture_app.sessions) as session:
        lifecycle.launch(session, sequence, now=frozen_clock())
    assert nurture_app.planner.tick().planned == 3
    sent = [frozen_clock(), frozen_clock(), frozen_clock() + timedelta(minutes=7)]
    with transaction(nurture_app.sessions) as session:
        messages = session.scalars(select(Message).order_by(Message.id)).all()
        for message, at in zip(messages, sent, strict=True):
            message.state, message.sent_at = MessageState.SENT, at
    frozen_clock.advance(hours=1)
    assert nurture_app.planner.tick().planned == 3
    with transaction(nurture_app.sessions, immediate=False) as session:
        later = session.execute(
            select(Message.due_at, Message.not_after, Message.state, Message.updated_at)
            .where(Message.step_index == 1)
            .order_by(Message.contact_id)
        ).all()
    assert [due for due, *_ in later] == [at + timedelta(days=2) for at in sent]
    assert all(not_after == due + timedelta(hours=48) for due, not_after, *_ in later)
    assert {(state, updated) for *_, state, updated in later} == {
        (MessageState.PLANNED, frozen_clock())
    }
