"""The APScheduler clock: periodic jobs that tick the planner, the dispatcher and recovery.

APScheduler's FAQ warns that schedulers must not share a job store, so each process keeps its own
in-memory store and only ticks; every message's state lives in our tables. Each job has an id and
explicit coalesce / max_instances / misfire_grace_time, and missed ticks collapse into one.

A slow tick is never run twice at once, and skipping is quiet. With max_instances=1 APScheduler
3 refuses the next run itself and logs a WARNING ("maximum number of running instances
reached") on every interval for as long as a long dispatch lasts. So each job's body holds a
non-blocking lock (`Tick`): a run that finds the previous one still going returns at once,
logged at DEBUG. max_instances=2 lets that run start (the long one plus the one that returns),
and the pool has a thread for each, so no run waits in its queue to be reported as missed.

Jobs: "plan" (the planner), "dispatch" (the dispatcher; a retryable failure is re-planned with
its backoff as due_at, so retries need no job of their own), "recover" (housekeeping: claims
and "sending" marks left by a stopped worker), "heartbeat" (scheduler/heartbeat.py: this
worker is alive, for the dashboard and `nurture status`), "settle" (scheduler/settle.py:
uncertain messages settled from the providers' own evidence), "purge-signups" (hourly:
sign-ups nobody confirmed in time are forgotten, contacts.signup) and "webhooks"
(scheduler/webhooks.py: events posted to the clinic's endpoints, never in the send path).
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
from scheduler.heartbeat import Heartbeat
from scheduler.planner import Planner
from scheduler.settle import Settler
from scheduler.webhooks import Deliverer

log = logging.getLogger("nurture.clock")


#: One run that works and one that finds it working and returns (see the module docstring).
INSTANCES = 2
#: Unconfirmed sign-ups are looked for hourly (they are kept for days: signup.unconfirmed_days).
PURGE_SIGNUPS_SECONDS = 3600.0


class Tick:
    """A job's body: runs `func` unless this job's previous run is still going (then returns at
    once, quietly); a failing run is logged and retried next tick, it never stops the clock."""

    def __init__(self, name: str, func: Callable[[], Any]) -> None:
        self.name, self.func = name, func
        self.running = threading.Lock()

    def __call__(self) -> None:
        if not self.running.acquire(blocking=False):
            log.debug("%s: the previous tick is still running; this one is skipped", self.name)
            return
        try:
            self.func()
        except Exception:
            log.exception("%s failed; retrying next tick", self.name)
        finally:
            self.running.release()


class EngineClock:
    def __init__(
        self,
        planner: Planner,
        dispatcher: Dispatcher,
        tick_seconds: float,
        heartbeat: Heartbeat | None = None,
        settler: Settler | None = None,
        purge_signups: Callable[[], Any] | None = None,
        webhooks: Deliverer | None = None,
    ) -> None:
        self.planner, self.dispatcher, self.tick_seconds = planner, dispatcher, tick_seconds
        self.heartbeat = heartbeat  # None: tests whose dispatcher is a fake
        self.ticks = {
            "plan": Tick("plan", self.planner.tick),
            "dispatch": Tick("dispatch", self._dispatch),
            "recover": Tick("recover", self.dispatcher.recover),
        }
        intervals = {"recover": max(tick_seconds, 30.0)}
        if heartbeat is not None:
            self.ticks["heartbeat"] = Tick("heartbeat", heartbeat.beat)
            intervals["heartbeat"] = heartbeat.interval
        if settler is not None:  # uncertain messages, from the providers' evidence
            self.ticks["settle"] = Tick("settle", settler.tick)
            intervals["settle"] = settler.interval
        if purge_signups is not None:
            self.ticks["purge-signups"] = Tick("purge-signups", purge_signups)
            intervals["purge-signups"] = PURGE_SIGNUPS_SECONDS
        if webhooks is not None:
            self.ticks["webhooks"] = Tick("webhooks", webhooks.tick)
            intervals["webhooks"] = webhooks.interval
        pool = ThreadPoolExecutor(max_workers=INSTANCES * len(self.ticks))
        self.scheduler = BackgroundScheduler(executors={"default": pool}, timezone="UTC")
        self.ticked = threading.Event()
        grace = max(1, int(tick_seconds))
        for name, tick in self.ticks.items():
            self._add(name, tick, intervals.get(name, tick_seconds), grace)

    def _add(self, job_id: str, func: Callable[[], Any], seconds: float, grace: int) -> None:
        self.scheduler.add_job(
            func,
            "interval",
            seconds=seconds,
            id=job_id,
            name=job_id,
            coalesce=True,
            max_instances=INSTANCES,
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

    def start(self) -> None:
        self.dispatcher.recover()
        self.scheduler.start()

    def stop(self) -> None:
        self.dispatcher.stop()  # a running tick ends after its current sub-batch
        self.scheduler.shutdown(wait=True)
        released = self.dispatcher.shutdown()
        if released:
            log.info("released %d claimed message(s) on shutdown", released)
        if self.heartbeat is not None:
            self.heartbeat.stopped()
