"""Worker heartbeats: whether anything is planning and sending right now.

A launched campaign only moves while a worker ticks (`nurture worker`, `nurture run`, the demo).
The dashboard and `nurture status` run in other processes and share nothing with the worker
but the database, so each worker's clock rewrites one row of `worker_heartbeats` a few times a
minute (its own job, so a long dispatch does not make a live worker look dead) and marks it
stopped on a clean shutdown. A row older than `scheduler.worker_stale_seconds` is a worker
that was killed or hangs. Times come from the app's clock, like every other time we record.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib.metadata import PackageNotFoundError, version

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from storage.db import transaction
from storage.models import WorkerHeartbeat

#: Rows of workers gone this long are deleted when a worker starts (a restart makes a new row).
FORGET_AFTER = timedelta(days=7)
#: The status query reads at most this many of the newest rows (the table is tiny anyway).
NEWEST_ROWS = 50


def _version() -> str:
    try:
        return version("nurture")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


class Heartbeat:
    """The row of one worker process, written by its clock."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        *,
        worker: str,
        channels: list[str],
        stale_seconds: float,
    ) -> None:
        self.sessions, self.clock, self.worker = sessions, clock, worker
        self.channels = ",".join(sorted(channels))
        #: Four beats in the span after which a worker counts as gone.
        self.interval = stale_seconds / 4
        self.started_at: datetime | None = None

    def beat(self) -> None:
        """Record a tick now (the first beat also forgets workers gone for a week)."""
        now = self.clock()
        with transaction(self.sessions) as session:
            row = session.get(WorkerHeartbeat, self.worker)
            if row is None:
                self.started_at = self.started_at or now
                session.execute(
                    delete(WorkerHeartbeat).where(WorkerHeartbeat.last_tick_at < now - FORGET_AFTER)
                )
                row = WorkerHeartbeat(
                    worker=self.worker,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    version=_version(),
                    channels=self.channels,
                    started_at=self.started_at,
                )
                session.add(row)
            row.last_tick_at = now
            row.stopped_at = None

    def stopped(self) -> None:
        """A clean shutdown: the dashboard says "not running" at once, not a minute later."""
        with transaction(self.sessions) as session:
            row = session.get(WorkerHeartbeat, self.worker)
            if row is not None:
                row.stopped_at = self.clock()


@dataclass(frozen=True)
class WorkerSeen:
    host: str
    pid: int
    version: str
    channels: str
    started_at: datetime
    last_tick_at: datetime


@dataclass(frozen=True)
class SchedulerStatus:
    """The workers alive now, and when the last one was last seen (None: never)."""

    alive: list[WorkerSeen]
    last_seen: datetime | None

    @property
    def running(self) -> bool:
        return bool(self.alive)


def scheduler_status(session: Session, *, now: datetime, stale_seconds: float) -> SchedulerStatus:
    """One query over the newest heartbeats: alive is fresh and not stopped."""
    rows = session.scalars(
        select(WorkerHeartbeat).order_by(WorkerHeartbeat.last_tick_at.desc()).limit(NEWEST_ROWS)
    ).all()
    oldest_fresh = now - timedelta(seconds=stale_seconds)
    alive = [
        WorkerSeen(row.host, row.pid, row.version, row.channels, row.started_at, row.last_tick_at)
        for row in rows
        if row.stopped_at is None and row.last_tick_at >= oldest_fresh
    ]
    last_seen = max((row.stopped_at or row.last_tick_at for row in rows), default=None)
    return SchedulerStatus(alive, last_seen)
