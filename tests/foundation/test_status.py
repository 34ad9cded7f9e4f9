"""`nurture status`: the workers alive (host, pid, last tick), a stopped scheduler with the time
it was last seen, the messages due and the oldest one's age, all by the app's clock."""

from __future__ import annotations

import io
import os
import socket
import sys
from pathlib import Path

import pytest
from rich.console import Console

from campaigns import lifecycle
from campaigns.definitions import load_sequence
from contacts.consent import record_consent
from core.clock import FrozenClock
from nurture.app import NurtureApp
from nurture.cli.main import main
from nurture.cli.status import age, report
from scheduler.heartbeat import Heartbeat
from storage.db import transaction
from storage.models import Contact


def _report(app: NurtureApp) -> str:
    out = io.StringIO()
    report(Console(file=out, width=80), app)
    return out.getvalue()


def _worker(app: NurtureApp, clock: FrozenClock) -> Heartbeat:
    return Heartbeat(app.sessions, clock, worker="w-1", channels=["sms", "email"], stale_seconds=45)


def _due_message(app: NurtureApp) -> None:
    """One contact in the demo sequence, its first email planned for now."""
    with transaction(app.sessions) as session:
        contact = Contact(first_name="Ana", last_name="T", email="ana@example.com", timezone="UTC")
        session.add(contact)
        session.flush()
        contact.add_tags(["demo"])
        record_consent(
            session,
            contact.id,
            "email",
            "opted_in",
            source="t",
            evidence="form",
            occurred_at=app.clock(),
        )
        lifecycle.launch(session, load_sequence("demo"), now=app.clock(), settings=app.settings)
    app.planner.tick()


def test_a_running_worker_and_the_oldest_due_message(
    sqlite_app: NurtureApp, frozen_clock: FrozenClock
) -> None:
    _due_message(sqlite_app)
    frozen_clock.advance(minutes=3)
    _worker(sqlite_app, frozen_clock).beat()
    frozen_clock.advance(seconds=20)
    text = _report(sqlite_app)
    assert "scheduler running: 1 worker(s) alive" in text
    assert f"{socket.gethostname()} pid {os.getpid()}: last tick 20 s ago" in text
    assert "draining email,sms" in text
    assert "due messages: 1; the oldest due 3 min ago" in text


def test_a_stopped_scheduler_says_since_when(
    sqlite_app: NurtureApp, frozen_clock: FrozenClock
) -> None:
    _worker(sqlite_app, frozen_clock).beat()
    frozen_clock.advance(minutes=2)
    text = _report(sqlite_app)
    assert "scheduler not running since 2026-12-01 18:00:00 UTC (2 min ago)" in text
    assert "due messages: 0\n" in text and "oldest" not in text


def test_ages_read_as_people_say_them() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 12, 1, tzinfo=UTC)
    cases = {
        timedelta(seconds=-3): "0 s",
        timedelta(seconds=59): "59 s",
        timedelta(minutes=12, seconds=5): "12 min",
        timedelta(hours=3, minutes=5): "3 h 5 min",
        timedelta(days=2, hours=4, minutes=1): "2 d 4 h",
    }
    for ago, said in cases.items():
        assert age(now, now - ago) == said


def test_the_command_on_a_new_database(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("NURTURE_DATABASE__URL", f"sqlite:///{tmp_path / 'status.db'}")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(sys, "argv", ["nurture", "status"])
    with pytest.raises(SystemExit) as exited:
        main()
    out = capsys.readouterr().out
    assert exited.value.code == 0
    assert "scheduler not running: no worker has started" in out
    assert "due messages: 0" in out
