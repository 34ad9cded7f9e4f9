"""The APScheduler clock: periodic jobs that tick the planner, the dispatcher and recovery.

APScheduler's FAQ warns that schedulers must not share a job store, so each process keeps its own
in-memory store and only ticks; every message's state lives in our tables. Each job has an id and
explicit coalesce / max_instances / misfire_grace_time, so a slow tick is never run twice at once
and missed ticks collapse into one.

Jobs: "plan" (the planner), "dispatch" (the dispatcher; a retryable failure is re-planned with
its backoff as due_at, so retries need no job of their own) and "recover" (housekeeping: claims
and "sending" marks left by a stopped worker).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from scheduler.dispatcher import Dispatcher
from scheduler.planner import Planner

log = logging.getLogger("nurture.clock")


class EngineClock:
    def __init__(self, planner: Planner, dispatcher: Dispatcher, tick_seconds: float) -> None:
        self.planner, self.dispatcher, self.tick_seconds = planner, dispatcher, tick_seconds
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=3)}, timezone="UTC"
        )
        self.ticked = threading.Event()
        grace = max(1, int(tick_seconds))
        self._add("plan", self._guard(self.planner.tick), tick_seconds, grace)
        self._add("dispatch", self._guard(self._dispatch), tick_seconds, grace)
        self._add("recover", self._guard(self.dispatcher.recover), max(tick_seconds, 30.0), grace)

    def _add(self, job_id: str, func: Callable[[], Any], seconds: float, grace: int) -> None:
        self.scheduler.add_job(
            func,
            "interval",
            seconds=seconds,
            id=job_id,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=grace,
            replace_existing=True,
            next_run_time=datetime.now(UTC),  # first tick at start, not one interval later
        )

    def _dispatch(self) -> None:
        result = self.dispatcher.tick()
        if result.claimed:
            log.info(
                "dispatched: %d sent, %d skipped, %d failed, %d deferred, %d retried, "
                "%d released, %d uncertain",
                result.sent,
                result.skipped,
                result.failed,
                result.deferred,
                result.retried,
                result.released,
                result.uncertain,
            )
        self.ticked.set()

    @staticmethod
    def _guard(func: Callable[[], Any]) -> Callable[[], None]:
        """A failing tick is logged and retried next tick; it never stops the clock."""

        def run() -> None:
            try:
                func()
            except Exception:
                log.exception("%s failed; retrying next tick", getattr(func, "__name__", func))

        return run

    def start(self) -> None:
        self.dispatcher.recover()
        self.scheduler.start()

    def stop(self) -> None:
        self.dispatcher.stop()  # a running tick ends after its current sub-batch
        self.scheduler.shutdown(wait=True)
        released = self.dispatcher.shutdown()
        if released:
            log.info("released %d claimed message(s) on shutdown", released)
