"""Branches (issue 18) in the planner, on SQLite and PostgreSQL with a frozen clock: a contact
who clicks the booking link within 2 days never gets the reminder text, one who does not gets
it when the 2 days are up (inside the text's window), and each enrollment records its path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, select

from campaigns import lifecycle
from campaigns.definitions import Sequence
from core.clock import FrozenClock
from nurture.app import NurtureApp
from providers.memory import MemoryChannel
from scheduler.planner import PlanResult
from storage.db import transaction
from storage.models import Enrollment, EnrollmentState, Event, Message, MessageState
from web.links import Click, record_clicks

LA = ZoneInfo("America/Los_Angeles")
VISIT, REMINDER, THANKS = 0, 1, 2


def _sequence(first: str = "email", **then: Any) -> Sequence:
    branch = {"clicked": "thanks", "otherwise": "reminder", "within": "2d", **then}
    template = "01-welcome" if first == "email" else "06-questions"
    return Sequence.model_validate(
        {
            "name": "branch-test",
            "title": "branch test",
            "template_folder": "spasm-relief",
            "steps": [
                {"name": "visit", "channel": first, "template": template, "then": branch},
                {
                    "name": "reminder",
                    "channel": "sms",
                    "template": "02-cycle",
                    "window": {"days": "mon-fri", "start": "10:00", "end": "18:00"},
                },
                {"name": "thanks", "channel": "email", "template": "03-cycle", "delay": "1d"},
            ],
        }
    )


def _launch(app: NurtureApp, clock: FrozenClock, sequence: Sequence) -> datetime:
    """Launch, plan and send the branching first step; returns when it was sent."""
    with transaction(app.sessions) as session:
        lifecycle.launch(session, sequence, now=clock(), settings=app.settings)
    app.planner.tick()
    assert app.dispatcher.tick().sent >= 1
    return clock()


def _click(app: NurtureApp, contact_id: int, at: datetime, destination: str = "booking") -> None:
    """A click as the link route records it (web.links.record_clicks)."""
    with transaction(app.sessions, immediate=False) as session:
        message = session.scalars(
            select(Message).where(Message.contact_id == contact_id, Message.step_index == VISIT)
        ).one()
        row = (message.id, message.campaign_id)
    click = Click(at, row[0], contact_id, row[1], VISIT, message.channel, "test", destination)
    record_clicks(app.engine, [click])


def _state(app: NurtureApp) -> tuple[dict[int, list[int]], dict[int, str | None], list[Message]]:
    with transaction(app.sessions, immediate=False) as session:
        messages = list(session.scalars(select(Message).order_by(Message.id)))
        paths = dict(session.execute(select(Enrollment.contact_id, Enrollment.path)).all())
    steps: dict[int, list[int]] = {}
    for message in messages:
        steps.setdefault(message.contact_id, []).append(message.step_index)
    return steps, paths, messages


def test_only_who_did_not_click_within_two_days_gets_the_reminder_text(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock, channel: MemoryChannel
) -> None:
    clicker = make_contact(phone="+13105550121", sms=True)
    silent = make_contact(phone="+13105550122", sms=True)
    sent = _launch(nurture_app, frozen_clock, _sequence())

    frozen_clock.advance(hours=5)
    _click(nurture_app, clicker, frozen_clock())
    result = nurture_app.planner.tick()
    assert (result.planned, result.branched) == (1, {"clicked": 1})  # the silent one waits
    frozen_clock.now = sent + timedelta(days=2) - timedelta(minutes=1)
    assert nurture_app.planner.tick().planned == 0  # not yet two days

    frozen_clock.now = sent + timedelta(days=2, minutes=1)
    result = nurture_app.planner.tick()
    assert (result.planned, result.branched) == (1, {"otherwise": 1})
    steps, paths, messages = _state(nurture_app)
    assert steps == {clicker: [VISIT, THANKS], silent: [VISIT, REMINDER]}
    assert paths == {clicker: "visit:clicked", silent: "visit:otherwise"}
    reminder = next(m for m in messages if m.step_index == REMINDER)
    thanks = next(m for m in messages if m.step_index == THANKS)
    # Due when the 2 days are up (Thursday 10:00 in Los Angeles: inside 10:00-18:00 mon-fri);
    # the clicker's next step counts its delay from the click.
    assert reminder.due_at == sent + timedelta(days=2)
    local = reminder.due_at.astimezone(LA)
    assert (local.strftime("%a"), local.hour) == ("Thu", 10)
    assert thanks.due_at == sent + timedelta(hours=5, days=1)

    nurture_app.dispatcher.tick()
    assert [text.to for text in channel.texts] == ["+13105550122"]  # never to the clicker


def test_a_waiting_branch_sleeps_until_its_deadline_and_a_click_wakes_it_at_the_next_tick(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock
) -> None:
    """Out of the ready walk until its deadline (Enrollment.wait_until); a booking-link click
    wakes it at the planner's next tick, and the clicked target is planned then."""
    clicker = make_contact(phone="+13105550133", sms=True)
    make_contact(phone="+13105550134", sms=True)
    sent = _launch(nurture_app, frozen_clock, _sequence())
    nurture_app.planner.tick()  # both wait: until the 2 days are up
    assert _waits(nurture_app) == {sent + timedelta(days=2)}
    frozen_clock.now = sent + timedelta(minutes=1)
    _click(nurture_app, clicker, frozen_clock())
    frozen_clock.now = sent + timedelta(minutes=1, seconds=5)  # the next tick
    result = nurture_app.planner.tick()
    assert (result.branched, result.planned) == ({"clicked": 1}, 1)
    steps, paths, _ = _state(nurture_app)
    assert steps[clicker] == [VISIT, THANKS] and paths[clicker] == "visit:clicked"
    frozen_clock.now = sent + timedelta(days=2) - timedelta(seconds=1)
    assert nurture_app.planner.tick().branched == {}
    frozen_clock.now = sent + timedelta(days=2)
    assert nurture_app.planner.tick().branched == {"otherwise": 1}
    assert _waits(nurture_app) == {None}


def test_a_waiting_branch_costs_no_update_until_its_event_or_its_deadline(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock
) -> None:
    """100 enrollments wait 2 days: a tick with no new event reads the newest event id and
    nothing else about them (no UPDATE of enrollments, no read of their events); a click on
    another link costs the next two ticks one UPDATE each that wakes no one; at the deadline
    all 100 are decided in one tick."""
    for number in range(100):
        make_contact(phone=f"+1310555{number:04d}", sms=True)
    sent = _launch(nurture_app, frozen_clock, _sequence())
    frozen_clock.now = sent + timedelta(seconds=5)
    nurture_app.planner.tick()  # all 100 wait
    frozen_clock.now = sent + timedelta(seconds=10)
    nurture_app.planner.tick()  # the events of the send (if any) seen twice: quiet from here
    statements: list[tuple[str, int]] = []

    def count(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        statements.append((" ".join(statement.split()), cursor.rowcount))

    def updates() -> list[int]:
        found = [rows for sql, rows in statements if sql.startswith("UPDATE enrollments")]
        statements.clear()
        return found

    event.listen(nurture_app.engine, "after_cursor_execute", count)
    try:
        for at in (timedelta(minutes=5), timedelta(hours=6), timedelta(days=1, hours=23)):
            frozen_clock.now = sent + at
            assert nurture_app.planner.tick() == PlanResult()
            events = [sql for sql, _ in statements if " FROM events" in sql]
            assert all(sql.startswith("SELECT max(events.id)") for sql in events), events
            assert updates() == []
        contact = _contact_ids(nurture_app)[0]
        _click(nurture_app, contact, frozen_clock(), destination="website")
        statements.clear()
        for seconds in (5, 10, 15):
            frozen_clock.advance(seconds=5)
            assert nurture_app.planner.tick() == PlanResult()
            assert updates() == ([] if seconds == 15 else [0])  # woke no one
        frozen_clock.now = sent + timedelta(days=2)
        assert nurture_app.planner.tick().branched == {"otherwise": 100}
    finally:
        event.remove(nurture_app.engine, "after_cursor_execute", count)


def test_a_planner_that_starts_wakes_who_clicked_while_none_ran(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock
) -> None:
    """A new planner has no high-water mark: its first tick looks at every waiting enrollment
    once (their events since the send, through the index), so a click made while no planner
    ran is acted on at once, not at the deadline."""
    from scheduler.planner import Planner

    clicker = make_contact(phone="+13105550135", sms=True)
    sent = _launch(nurture_app, frozen_clock, _sequence())
    nurture_app.planner.tick()  # waits
    _click(nurture_app, clicker, sent + timedelta(hours=1))
    frozen_clock.now = sent + timedelta(hours=2)
    restarted = Planner(nurture_app.settings, nurture_app.sessions, frozen_clock)
    assert restarted.tick().branched == {"clicked": 1}


def test_two_planners_waking_at_once_wake_each_enrollment_once(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock
) -> None:
    """Several workers on PostgreSQL: the wake-up locks its rows in id order, so a second one
    running at once waits for the first, then finds them awake (wait_until = now) and changes
    nothing: no deadlock, no row woken twice."""
    import threading

    from scheduler.branching import wake

    if nurture_app.engine.dialect.name != "postgresql":
        pytest.skip("row locks between workers: PostgreSQL")
    contacts = [make_contact(phone=f"+1310556{n:04d}", sms=True) for n in range(20)]
    sent = _launch(nurture_app, frozen_clock, _sequence())
    nurture_app.planner.tick()  # all wait
    for contact in contacts:
        _click(nurture_app, contact, sent + timedelta(minutes=1))
    now = frozen_clock.now = sent + timedelta(minutes=2)
    second: list[int] = []

    def other_worker() -> None:
        with nurture_app.engine.begin() as connection:
            second.append(wake(connection, now, 0))

    with nurture_app.engine.begin() as connection:
        assert wake(connection, now, None) == 20
        worker = threading.Thread(target=other_worker)
        worker.start()
        worker.join(0.5)
        assert worker.is_alive()  # waits for the first one's row locks
    worker.join(10)
    assert second == [0]
    assert nurture_app.planner.tick().branched == {"clicked": 20}


def _waits(app: NurtureApp) -> set[datetime | None]:
    with transaction(app.sessions, immediate=False) as session:
        return set(session.scalars(select(Enrollment.wait_until)))


def _contact_ids(app: NurtureApp) -> list[int]:
    with transaction(app.sessions, immediate=False) as session:
        return list(session.scalars(select(Enrollment.contact_id).order_by(Enrollment.id)))


def test_the_branch_waits_for_the_window_and_what_does_not_count(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock, channel: MemoryChannel
) -> None:
    """A click on another link, or after the 2 days, is no booking-link click within them; the
    reminder due on a Saturday waits for Monday 10:00 local (its mon-fri window)."""
    # Thursday 2026-12-03 10:00 in LA: two days later is Saturday.
    frozen_clock.now = datetime(2026, 12, 3, 10, 0, tzinfo=LA).astimezone(UTC)
    other_link = make_contact(phone="+13105550123", sms=True)
    late = make_contact(phone="+13105550124", sms=True)
    sent = _launch(nurture_app, frozen_clock, _sequence())
    _click(nurture_app, other_link, sent + timedelta(hours=1), destination="website")
    frozen_clock.now = sent + timedelta(days=3)
    _click(nurture_app, late, sent + timedelta(days=2, hours=1))
    result = nurture_app.planner.tick()
    assert result.branched == {"otherwise": 2}
    _, paths, messages = _state(nurture_app)
    assert set(paths.values()) == {"visit:otherwise"}
    for message in messages:
        if message.step_index == REMINDER:
            local = message.due_at.astimezone(LA)
            assert (local.strftime("%a"), local.hour, local.minute) == ("Mon", 10, 0)


def test_a_branch_to_the_end_completes_and_a_reply_takes_its_own_way(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock
) -> None:
    replier = make_contact(phone="+13105550125", sms=True)
    clicker = make_contact(phone="+13105550126", sms=True)
    sequence = _sequence("sms", clicked="end", replied="thanks")  # replies: texts only
    sent = _launch(nurture_app, frozen_clock, sequence)
    _click(nurture_app, clicker, sent + timedelta(minutes=30))
    with transaction(nurture_app.sessions) as session:
        for kind, intent in (("inbound", "stop"), ("inbound", "other")):  # a keyword is no reply
            session.add(
                Event(
                    kind=kind,
                    occurred_at=sent + timedelta(hours=1),
                    contact_id=replier,
                    channel="sms",
                    data={"intent": intent},
                )
            )
    frozen_clock.advance(hours=2)
    result = nurture_app.planner.tick()
    assert result.branched == {"clicked": 1, "replied": 1} and result.completed == 1
    steps, paths, messages = _state(nurture_app)
    assert steps == {clicker: [VISIT], replier: [VISIT, THANKS]}
    assert paths == {clicker: "visit:clicked", replier: "visit:replied"}
    with transaction(nurture_app.sessions, immediate=False) as session:
        states = dict(session.execute(select(Enrollment.contact_id, Enrollment.state)).all())
    assert states[clicker] == EnrollmentState.COMPLETED
    thanks = next(m for m in messages if m.step_index == THANKS)
    assert thanks.due_at == sent + timedelta(hours=1, days=1)  # from the reply


def test_a_text_reply_pauses_and_once_resumed_takes_the_replied_way(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock
) -> None:
    """Through the inbound webhook's own handler: the reply pauses the enrollment (a person
    answers first, campaigns.replies); resumed, the branch is decided by the reply's time."""
    from campaigns import replies
    from web.webhooks.twilio import handle_inbound

    make_contact(phone="+13105550132", sms=True)
    sent = _launch(nurture_app, frozen_clock, _sequence("sms", replied="thanks"))
    frozen_clock.advance(hours=1)
    handle_inbound(
        nurture_app,  # the app container is a WebServices
        {"MessageSid": "SM1", "From": "+13105550132", "Body": "Can I come on Saturday?"},
    )
    frozen_clock.now = sent + timedelta(days=3)
    assert nurture_app.planner.tick().branched == {}  # paused: nothing moves
    with transaction(nurture_app.sessions) as session:
        enrollment = session.scalars(select(Enrollment)).one()
        replies.resume(session, enrollment.id, by="editor@clinic", at=frozen_clock())
    assert nurture_app.planner.tick().branched == {"replied": 1}
    _, paths, messages = _state(nurture_app)
    assert list(paths.values()) == ["visit:replied"]
    assert [m.step_index for m in messages] == [VISIT, THANKS]


def test_a_booking_while_the_branch_waits_ends_the_sequence(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock
) -> None:
    from campaigns.booking import mark_booked
    from storage.models import Contact

    booked = make_contact(phone="+13105550127", sms=True)
    sent = _launch(nurture_app, frozen_clock, _sequence())
    frozen_clock.now = sent + timedelta(days=1)
    with transaction(nurture_app.sessions) as session:
        mark_booked(session, session.get_one(Contact, booked), at=frozen_clock(), source="test")
    frozen_clock.now = sent + timedelta(days=3)
    result = nurture_app.planner.tick()
    assert result.planned == 0 and result.branched == {}
    steps, paths, messages = _state(nurture_app)
    assert steps == {booked: [VISIT]} and paths == {booked: None}
    assert all(m.state == MessageState.SENT for m in messages)


def test_the_funnel_counts_the_people_on_each_branch(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock
) -> None:
    from campaigns.reports import campaign_funnel, funnel_csv
    from storage.models import Campaign

    clicker = make_contact(phone="+13105550128", sms=True)
    make_contact(phone="+13105550129", sms=True)
    make_contact(phone="+13105550130", sms=True)
    sent = _launch(nurture_app, frozen_clock, _sequence())
    _click(nurture_app, clicker, sent + timedelta(hours=1))
    frozen_clock.now = sent + timedelta(days=2, hours=1)
    nurture_app.planner.tick()
    with transaction(nurture_app.sessions, immediate=False) as session:
        funnel = campaign_funnel(session, session.scalars(select(Campaign)).one())
    ways = {(b.step, b.event): (b.target, b.people, b.share) for b in funnel.branches}
    assert ways == {
        ("visit", "clicked"): ("thanks", 1, 1 / 3),
        ("visit", "otherwise"): ("reminder", 2, 2 / 3),
    }
    labels = [branch.label for branch in funnel.branches]
    assert labels == ["clicked the booking link within 2d", "did not click within 2d"]
    assert [step.reached for step in funnel.steps] == [3, 2, 1]  # a step row each, as before
    assert "visit,did not click within 2d,reminder,2,3" in funnel_csv(funnel, [])


def test_a_sequence_without_branches_has_no_branch_rows_and_records_no_path(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock
) -> None:
    from campaigns.reports import campaign_funnel
    from storage.models import Campaign

    make_contact(phone="+13105550131", sms=True)
    plain = _sequence().model_copy(
        update={"steps": tuple(s.model_copy(update={"then": None}) for s in _sequence().steps)}
    )
    sent = _launch(nurture_app, frozen_clock, plain)
    frozen_clock.now = sent + timedelta(minutes=5)
    result = nurture_app.planner.tick()
    assert (result.planned, result.branched) == (1, {})  # the next in the file, at once
    steps, paths, _ = _state(nurture_app)
    assert list(steps.values()) == [[VISIT, REMINDER]] and list(paths.values()) == [None]
    with transaction(nurture_app.sessions, immediate=False) as session:
        assert campaign_funnel(session, session.scalars(select(Campaign)).one()).branches == []
