"""`nurture status`: is anything planning and sending, and how much is waiting for it.

The same facts as the dashboard's header and campaign page (scheduler.heartbeat,
scheduler.backlog), for a terminal or a monitoring script: the workers alive with their host,
pid and last tick; the planned messages already due, and how long the oldest has waited.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from rich.console import Console

from nurture.app import NurtureApp
from nurture.cli.common import console, ready_app
from scheduler.backlog import due_backlog
from scheduler.heartbeat import scheduler_status


def status() -> None:
    """Workers alive (host, pid, last tick), messages due, and the oldest due message's age."""
    nurture = ready_app()
    try:
        report(console, nurture)
    finally:
        nurture.dispose()


def report(out: Console, nurture: NurtureApp) -> None:
    now = nurture.clock()
    with nurture.sessions() as session:
        workers = scheduler_status(
            session, now=now, stale_seconds=nurture.settings.scheduler.worker_stale_seconds
        )
        backlog = due_backlog(session, now=now)
    if workers.running:
        out.print(f"scheduler running: {len(workers.alive)} worker(s) alive", highlight=False)
        for worker in workers.alive:
            out.print(
                f"  {worker.host} pid {worker.pid}: last tick {age(now, worker.last_tick_at)} "
                f"ago, draining {worker.channels}, started {_utc(worker.started_at)}, "
                f"version {worker.version}",
                highlight=False,
                soft_wrap=True,
            )
    elif workers.last_seen is not None:
        out.print(
            f"scheduler not running since {_utc(workers.last_seen)} "
            f"({age(now, workers.last_seen)} ago): start `nurture worker`",
            highlight=False,
            soft_wrap=True,
        )
    else:
        out.print("scheduler not running: no worker has started (`nurture worker`)")
    oldest = (
        f"; the oldest due {age(now, backlog.oldest_due_at)} ago"
        if backlog.oldest_due_at is not None
        else ""
    )
    out.print(f"due messages: {backlog.count}{oldest}", highlight=False)


def age(now: datetime, then: datetime) -> str:
    """A short duration for people: 40 s, 12 min, 3 h 5 min, 2 d 4 h."""
    seconds = max(0, int((now - then) / timedelta(seconds=1)))
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 60:
        return f"{seconds} s"
    if minutes < 60:
        return f"{minutes} min"
    if hours < 24:
        return f"{hours} h {minutes % 60} min"
    return f"{days} d {hours % 24} h"


def _utc(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"
