"""Control: simulate (sends nothing), the uncertain list and its resolution, the CLI, and the
window arithmetic every send time goes through (property tests across daylight-saving days)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from typer.testing import CliRunner

from campaigns.definitions import SendWindow, load_sequence
from core.errors import InputError
from nurture.app import NurtureApp
from scheduler.attention import Resolution, needing_attention, resolve
from scheduler.planner import quiet_hours
from scheduler.simulate import BranchRates, simulate
from scheduler.windows import QuietHours, next_allowed
from storage.db import transaction
from storage.models import Message, MessageState

NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
ZONES = ["America/Los_Angeles", "America/New_York", "Pacific/Honolulu", "Europe/London"]


@given(
    at=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    zone=st.sampled_from(ZONES),
    start=st.integers(8, 14),
    hours=st.integers(1, 7),
    days=st.sets(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]), min_size=1),
)
@settings(max_examples=300, deadline=None)
def test_next_allowed_lands_inside_the_window_and_quiet_hours(
    at: datetime, zone: str, start: int, hours: int, days: set[str]
) -> None:
    window = SendWindow(days=tuple(days), start=time(start), end=time(start + hours))
    found = next_allowed(at, zone, window, QuietHours())
    assert found is not None and found >= at
    local = found.astimezone(ZoneInfo(zone))
    assert local.strftime("%a").lower() in days
    assert time(max(start, 8)) <= local.time() < time(min(start + hours, 21))
    assert found - at < timedelta(days=8)


def test_simulate_projects_every_step_and_sends_nothing(
    nurture_app: NurtureApp, make_contact: Any
) -> None:
    for n, zone in enumerate(ZONES):
        make_contact(phone=f"+1310555{n:04d}", sms=n != 0, timezone=zone)
    sequence = load_sequence("spasm-relief")
    with transaction(nurture_app.sessions, immediate=False) as session:
        rows = simulate(
            session,
            sequence,
            campaign=None,
            start=NOW,
            days=30,
            quiet=quiet_hours(nurture_app.settings),
            sms_cap=timedelta(hours=24),
            rates=BranchRates(clicked=0.0, replied=0.0),  # nobody clicks: every step is taken
        )
        assert session.scalar(select(func.count()).select_from(Message)) == 0
    assert len(rows) == len(ZONES) * len(sequence.steps)
    texts = [row for row in rows if row.channel == "sms"]
    assert sum(1 for row in texts if row.skipped == "no sms consent") == 3  # three text steps
    for row in rows:
        step = next(step for step in sequence.steps if step.name == row.step)
        zone = next(z for n, z in enumerate(ZONES) if n + 1 == row.contact_id)
        local = row.at.astimezone(ZoneInfo(zone))
        assert step.window.start <= local.time() <= step.window.end
        if row.channel == "sms":
            assert time(8) <= local.time() < time(21)


def test_uncertain_messages_are_listed_masked_and_resolved_by_staff(
    h: Any, nurture_app: NurtureApp
) -> None:
    first, second = h.seed(nurture_app, emails=2, due=NOW)
    with transaction(nurture_app.sessions) as session:
        for message_id in (first, second):
            message = session.get_one(Message, message_id)
            message.state, message.error = MessageState.UNCERTAIN, "worker stopped"
    with transaction(nurture_app.sessions) as session:
        listed = needing_attention(session)
    assert [row.message_id for row in listed] == [first, second]
    assert all("@" in row.to and "***" in row.to for row in listed)
    with transaction(nurture_app.sessions) as session:
        resolve(session, first, Resolution.RESEND, now=NOW, by="test")
        resolve(session, second, Resolution.SENT, now=NOW, by="test")
    rows = h.message_rows(nurture_app)
    assert rows[first].state == MessageState.PLANNED and rows[first].due_at == NOW
    assert rows[second].state == MessageState.SENT
    with pytest.raises(InputError), transaction(nurture_app.sessions) as session:
        resolve(session, second, Resolution.RESEND, now=NOW, by="test")
    assert nurture_app.dispatcher.tick().sent == 1  # only the one staff chose to re-send


def test_cli_simulate_and_uncertain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nurture.cli.main import app

    monkeypatch.setenv("NURTURE_DATABASE__URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("COLUMNS", "160")
    runner = CliRunner()
    result = runner.invoke(app, ["campaigns", "simulate", "spasm-relief", "--days", "7"])
    assert result.exit_code == 0, result.output
    assert "nothing is sent" in result.output and "0 would be sent" in result.output
    result = runner.invoke(app, ["campaigns", "uncertain"])
    assert result.exit_code == 0 and "No message needs attention" in result.output


def test_a_clean_shutdown_hands_back_claims_it_never_sent(h: Any, nurture_app: NurtureApp) -> None:
    from scheduler.claims import claim_due

    ids = h.seed(nurture_app, emails=3, due=NOW)
    worker = nurture_app.dispatcher.worker
    with transaction(nurture_app.sessions) as session:
        assert sorted(claim_due(session, now=NOW, limit=10, worker=worker)) == sorted(ids)
    assert set(h.states(nurture_app).values()) == {MessageState.CLAIMED}
    assert nurture_app.dispatcher.shutdown() == 3
    assert set(h.states(nurture_app).values()) == {MessageState.PLANNED}


class _LongDispatch:
    """A dispatcher whose first tick lasts until the test lets it end (a long campaign's batch),
    counting the ticks the clock tried to start meanwhile."""

    def __init__(self) -> None:
        import threading

        self.started, self.release = threading.Event(), threading.Event()
        self.stopping = threading.Event()

    def tick(self) -> Any:
        self.started.set()
        self.release.wait(10)
        return type("Tally", (), {"claimed": 0})()

    def recover(self) -> tuple[int, int]:
        return 0, 0

    def stop(self) -> None:
        self.release.set()

    def shutdown(self) -> int:
        return 0


def test_a_long_dispatch_keeps_the_log_quiet(caplog: pytest.LogCaptureFixture) -> None:
    """APScheduler 3 logs a WARNING for every tick refused while a run goes on (max_instances);
    the clock skips those ticks itself, at DEBUG, so a long dispatch leaves the log quiet."""
    import threading
    import time as wall

    from scheduler.clock import EngineClock

    dispatcher = _LongDispatch()
    planner = type("Planner", (), {"tick": staticmethod(lambda: None)})()
    clock = EngineClock(planner, dispatcher, tick_seconds=0.02)  # type: ignore[arg-type]  # fakes at the seam
    waiting = threading.Event()
    caplog.set_level("DEBUG")
    clock.start()
    try:
        assert dispatcher.started.wait(5)
        job = clock.scheduler.get_job("dispatch")
        later = job.next_run_time + timedelta(seconds=0.1)  # five more ticks come due
        deadline = wall.monotonic() + 5
        while clock.scheduler.get_job("dispatch").next_run_time < later:
            assert wall.monotonic() < deadline
            waiting.wait(0.01)
        assert not dispatcher.release.is_set()  # the first tick was running all along
    finally:
        clock.stop()
    # The CLI shows WARNING and above of APScheduler's loggers, everything of ours from INFO.
    loud = [record.getMessage() for record in caplog.records if record.levelno >= 30]
    assert loud == []
    assert any("still running" in record.getMessage() for record in caplog.records)
