"""Worker heartbeats: a worker's clock records that it is alive, a stale or stopped row is a
worker that is gone, and rows of workers gone for a week are forgotten."""

from __future__ import annotations

import os
import socket
import time
from datetime import timedelta

from sqlalchemy import select

from core.clock import FrozenClock
from nurture.app import NurtureApp
from scheduler.heartbeat import Heartbeat, SchedulerStatus, scheduler_status
from storage.db import transaction
from storage.models import WorkerHeartbeat

STALE = 45.0


def _heartbeat(app: NurtureApp, clock: FrozenClock, worker: str = "w-1") -> Heartbeat:
    return Heartbeat(
        app.sessions, clock, worker=worker, channels=["sms", "email"], stale_seconds=STALE
    )


def _status(app: NurtureApp, clock: FrozenClock) -> SchedulerStatus:
    with app.sessions() as session:
        return scheduler_status(session, now=clock(), stale_seconds=STALE)


def test_a_beat_records_host_pid_version_channels_and_times(
    sqlite_app: NurtureApp, frozen_clock: FrozenClock
) -> None:
    started = frozen_clock()
    heartbeat = _heartbeat(sqlite_app, frozen_clock)
    heartbeat.beat()
    frozen_clock.advance(seconds=10)
    heartbeat.beat()
    with sqlite_app.sessions() as session:
        row = session.scalars(select(WorkerHeartbeat)).one()
    assert (row.worker, row.host, row.pid) == ("w-1", socket.gethostname(), os.getpid())
    assert row.channels == "email,sms" and row.version
    assert row.started_at == started
    assert row.last_tick_at == frozen_clock() and row.stopped_at is None
    assert heartbeat.interval == STALE / 4


def test_fresh_is_running_stale_is_not_running_since_its_last_tick(
    sqlite_app: NurtureApp, frozen_clock: FrozenClock
) -> None:
    assert _status(sqlite_app, frozen_clock).running is False
    assert _status(sqlite_app, frozen_clock).last_seen is None
    _heartbeat(sqlite_app, frozen_clock).beat()
    last_tick = frozen_clock()

    frozen_clock.advance(seconds=STALE)
    fresh = _status(sqlite_app, frozen_clock)
    assert fresh.running and [w.last_tick_at for w in fresh.alive] == [last_tick]

    frozen_clock.advance(seconds=1)
    stale = _status(sqlite_app, frozen_clock)
    assert not stale.running and stale.last_seen == last_tick


def test_a_clean_stop_is_not_running_at_once(
    sqlite_app: NurtureApp, frozen_clock: FrozenClock
) -> None:
    heartbeat = _heartbeat(sqlite_app, frozen_clock)
    heartbeat.beat()
    frozen_clock.advance(seconds=2)
    heartbeat.stopped()
    status = _status(sqlite_app, frozen_clock)
    assert not status.running and status.last_seen == frozen_clock()


def test_one_live_worker_among_dead_ones_is_running(
    sqlite_app: NurtureApp, frozen_clock: FrozenClock
) -> None:
    _heartbeat(sqlite_app, frozen_clock, "old").beat()
    frozen_clock.advance(minutes=5)
    _heartbeat(sqlite_app, frozen_clock, "new").beat()
    status = _status(sqlite_app, frozen_clock)
    assert len(status.alive) == 1 and status.alive[0].last_tick_at == frozen_clock()


def test_workers_gone_a_week_are_forgotten_when_a_worker_starts(
    sqlite_app: NurtureApp, frozen_clock: FrozenClock
) -> None:
    _heartbeat(sqlite_app, frozen_clock, "last-month").beat()
    frozen_clock.advance(days=6)
    _heartbeat(sqlite_app, frozen_clock, "last-week").beat()
    frozen_clock.advance(days=2)
    _heartbeat(sqlite_app, frozen_clock, "today").beat()
    with sqlite_app.sessions() as session:
        names = set(session.scalars(select(WorkerHeartbeat.worker)))
    assert names == {"last-week", "today"}


def test_the_engine_clock_beats_while_it_runs_and_marks_its_stop(
    sqlite_app: NurtureApp, frozen_clock: FrozenClock
) -> None:
    clock = sqlite_app.engine_clock()
    clock.start()
    try:
        deadline = time.monotonic() + 10
        while not _status(sqlite_app, frozen_clock).running:
            assert time.monotonic() < deadline, "no heartbeat within 10 s of starting"
            time.sleep(0.05)
    finally:
        clock.stop()
    assert not _status(sqlite_app, frozen_clock).running
    with transaction(sqlite_app.sessions) as session:
        row = session.scalars(select(WorkerHeartbeat)).one()
        assert row.worker == sqlite_app.dispatcher.worker
        assert row.stopped_at == frozen_clock()
        assert row.last_tick_at >= frozen_clock() - timedelta(seconds=1)
