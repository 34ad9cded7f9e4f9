"""The header's "scheduler running" / "not running since ...": one small query, cached.

Every staff page shows it, so it is read at most once every few seconds per process (by the
app's clock), not once a page; a worker's heartbeats come every few seconds anyway
(scheduler/heartbeat.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request

from scheduler.heartbeat import SchedulerStatus, scheduler_status
from web.services import WebServices

CACHE_FOR = timedelta(seconds=5)


@dataclass(frozen=True)
class _Read:
    status: SchedulerStatus
    at: datetime


def current_scheduler_status(request: Request) -> SchedulerStatus:
    nurture: WebServices = request.app.state.nurture  # Starlette's State is untyped
    now = nurture.clock()
    last: _Read | None = getattr(request.app.state, "scheduler_status", None)
    if last is not None and timedelta(0) <= now - last.at < CACHE_FOR:
        return last.status
    stale_seconds = nurture.settings.scheduler.worker_stale_seconds
    with nurture.sessions() as session:
        status = scheduler_status(session, now=now, stale_seconds=stale_seconds)
    request.app.state.scheduler_status = _Read(status, now)
    return status
