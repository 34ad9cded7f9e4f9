"""Crashes and contention, on SQLite and PostgreSQL: kill -9 a worker mid-batch and restart;
two workers on one PostgreSQL database. Nothing is sent twice and nothing is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.clock import FrozenClock
from nurture.app import NurtureApp
from providers.fakeserver import Received, RunningFake
from scheduler.dispatcher import CHUNK_PER_CONNECTION, IN_FLIGHT
from storage.models import MessageState

NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
WORKER = Path(__file__).with_name("worker_process.py")
CONCURRENCY = 4
CHUNK = CONCURRENCY * CHUNK_PER_CONNECTION


def _env(sections: dict[str, dict[str, Any]]) -> dict[str, str]:
    env = dict(os.environ)
    for section, values in sections.items():
        for key, value in values.items():
            env[f"NURTURE_{section.upper()}__{key.upper()}"] = str(value)
    return env


def test_kill_9_mid_batch_then_restart_loses_nothing_and_sends_nothing_twice(
    h: Any,
    provider_app: Callable[..., NurtureApp],
    fake: RunningFake,
    db_url: str,
    tmp_path: Path,
) -> None:
    overrides = {
        "sendgrid": {"concurrency": CONCURRENCY, "api_host": fake.url},
        "twilio": {"concurrency": CONCURRENCY, "api_base_url": fake.url},
        "scheduler": {"batch_size": 200, "sending_timeout_seconds": 60},
    }
    app = provider_app(clock=FrozenClock(NOW), **overrides)
    ids = h.seed(app, emails=60, texts=60, due=NOW)
    fake.fake.delay = 0.05
    midway = threading.Event()

    def watch(item: Received) -> None:
        if len(fake.fake.received) >= 30:
            midway.set()

    fake.fake.on_request = watch
    sections = h.provider_sections(db_url, tmp_path, **overrides)
    worker = subprocess.Popen(
        [sys.executable, str(WORKER), NOW.isoformat()],
        env=_env(sections),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert midway.wait(30), "the worker never reached the provider"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    output = worker.stdout.read() if worker.stdout else ""
    assert worker.returncode == -signal.SIGKILL, output
    before = h.states(app)
    in_flight = {m for m, state in before.items() if state == MessageState.SENDING}
    # One sub-batch on the wire and, at most, those queued or answered but not yet recorded.
    assert 0 < len(in_flight) <= IN_FLIGHT * CHUNK
    assert MessageState.PLANNED in before.values() or MessageState.CLAIMED in before.values()

    # Restart: recovery after the timeout, then a new worker finishes the campaign.
    fake.fake.delay = 0.0
    later = provider_app(clock=FrozenClock(NOW + timedelta(minutes=2)), **overrides)
    _replanned, uncertain = later.dispatcher.recover()
    assert uncertain == len(in_flight)
    later.dispatcher.tick()

    after = h.states(app)
    assert set(after) == set(ids)
    assert set(after.values()) <= {MessageState.SENT, MessageState.UNCERTAIN}
    uncertain_ids = {m for m, state in after.items() if state == MessageState.UNCERTAIN}
    assert uncertain_ids == in_flight  # uncertain only for those in flight
    received = Counter(fake.fake.ids())
    assert max(received.values()) == 1  # nobody got a message twice
    sent = {m for m, state in after.items() if state == MessageState.SENT}
    assert sent <= set(received)  # every "sent" really reached the provider
    assert set(received) <= sent | uncertain_ids


@pytest.mark.postgres
def test_two_workers_on_postgres_share_the_work_and_never_send_the_same_message(
    h: Any, pg_provider_app: Callable[..., NurtureApp], fake: RunningFake
) -> None:
    overrides = {"scheduler": {"batch_size": 25}}
    first, second = pg_provider_app(**overrides), pg_provider_app(**overrides)
    ids = h.seed(first, emails=200, texts=200, due=NOW)
    fake.fake.delay = 0.005
    start = threading.Barrier(2)
    results: dict[str, Any] = {}

    def run(name: str, app: NurtureApp) -> None:
        start.wait()
        results[name] = app.dispatcher.tick()

    threads = [
        threading.Thread(target=run, args=(name, app))
        for name, app in (("first", first), ("second", second))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results["first"].sent > 0 and results["second"].sent > 0
    assert results["first"].sent + results["second"].sent == len(ids)
    assert Counter(fake.fake.ids()) == Counter(ids)
    assert set(h.states(first).values()) == {MessageState.SENT}


def test_two_workers_texting_one_contact_from_two_campaigns_send_one_text(
    h: Any, pg_provider_app: Callable[..., NurtureApp], fake: RunningFake
) -> None:
    """The per-contact SMS cap holds across workers: the second worker's check waits for the
    first one's claim to commit, sees it, and defers its own text."""
    overrides = {"scheduler": {"batch_size": 1, "sms_frequency_cap_hours": 24}}
    first, second = pg_provider_app(**overrides), pg_provider_app(**overrides)
    [one] = h.seed(first, texts=1, due=NOW, campaign="cap-a")
    contact = h.message_rows(first)[one].contact_id
    [two] = h.seed(first, texts=1, due=NOW, campaign="cap-b", contacts=[contact])
    first_checked, second_checking = threading.Event(), threading.Event()
    original_first, original_second = first.dispatcher._last_texts, second.dispatcher._last_texts

    def first_checks(*args: Any) -> Any:
        found = original_first(*args)
        first_checked.set()
        # Hold the claiming transaction open until the second worker is checking too.
        second_checking.wait(10)
        time.sleep(0.3)
        return found

    def second_checks(*args: Any) -> Any:
        second_checking.set()
        return original_second(*args)

    first.dispatcher._last_texts = first_checks  # type: ignore[method-assign]
    second.dispatcher._last_texts = second_checks  # type: ignore[method-assign]
    results: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: results.update(first=first.dispatcher.tick()))
    worker.start()
    assert first_checked.wait(10)
    results["second"] = second.dispatcher.tick()
    worker.join(30)
    assert results["first"].sent == 1 and results["second"].sent == 0
    assert results["second"].deferred == 1
    assert fake.fake.ids() == [one]
    states = h.states(first)
    assert states[one] == MessageState.SENT and states[two] == MessageState.PLANNED


@pytest.mark.parametrize("killed_while", ["email", "sms"])
def test_after_kill_9_every_uncertain_message_settles_itself_correctly(
    killed_while: str,
    h: Any,
    provider_app: Callable[..., NurtureApp],
    fake: RunningFake,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Killed mid-batch, then recovered: each uncertain text is settled by Twilio's Messages
    list, each uncertain email (Event Webhook on) by its SendGrid events or their absence, within
    the configured wait; the never-sent ones then go exactly once."""
    from providers.events import DeliveryEvent, EventType
    from scheduler.deliveries import apply_event
    from scheduler.settle import Settler
    from storage.db import transaction

    monkeypatch.setenv("NURTURE_SENDGRID_WEBHOOK_PUBLIC_KEY", "MFkw-test-key")
    overrides = {
        "sendgrid": {"concurrency": CONCURRENCY, "api_host": fake.url},
        "twilio": {"concurrency": CONCURRENCY, "api_base_url": fake.url},
        "scheduler": {"batch_size": 200, "sending_timeout_seconds": 60},
    }
    app = provider_app(clock=FrozenClock(NOW), **overrides)
    ids = h.seed(app, emails=60, texts=60, due=NOW)
    fake.fake.clock = FrozenClock(NOW)  # Twilio's log is stamped on the app's frozen clock
    fake.fake.delay = 0.05
    midway = threading.Event()
    # Killed while that channel's sub-batches are on the wire (emails go first in a batch).
    fake.fake.on_request = lambda item: (
        midway.set() if len(fake.fake.ids(killed_while)) >= 20 else None
    )
    sections = h.provider_sections(db_url, tmp_path, **overrides)
    worker = subprocess.Popen(
        [sys.executable, str(WORKER), NOW.isoformat()],
        env=_env(sections),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert midway.wait(30), "the worker never reached the provider"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    fake.fake.delay = 0.0
    # Requests the worker wrote before it died are still answered by the provider (here within
    # the fake's delay; recovery waits `sending_timeout_seconds` in real time for the same
    # reason): its log is final only once it has gone quiet.
    _wait_until_quiet(fake)
    clock = FrozenClock(NOW + timedelta(minutes=2))
    later = provider_app(clock=clock, **overrides)
    _replanned, uncertain = later.dispatcher.recover()
    uncertain_ids = {m for m, state in h.states(later).items() if state == MessageState.UNCERTAIN}
    assert uncertain == len(uncertain_ids) > 0
    channels = {row.channel for m, row in h.message_rows(later).items() if m in uncertain_ids}
    assert killed_while in channels
    reached = set(fake.fake.ids())
    # SendGrid's webhook reports what it accepted (a processed event for each), while the
    # record of some was lost with the worker.
    with transaction(later.sessions) as session:
        for message_id in sorted(set(fake.fake.ids("email"))):
            event = DeliveryEvent(
                "sendgrid", EventType.QUEUED, f"sg-{message_id}", NOW, message_id,
                f"sg-{message_id}", provider_status="processed",
            )  # fmt: skip
            apply_event(session, event, later.settings.status)

    settler = Settler(later.settings, later.sessions, later.dispatcher.sms, clock)
    settler.tick()  # texts: at once; emails: their events, or the wait
    clock.advance(seconds=later.settings.scheduler.settle_email_wait_seconds)
    settler.tick()
    after = h.states(later)
    assert not {m for m in uncertain_ids if after[m] == MessageState.UNCERTAIN}
    rows = h.message_rows(later)
    for message_id in uncertain_ids:
        if message_id in reached:  # it went: sent, with the provider's id
            assert after[message_id] == MessageState.SENT, message_id
            assert rows[message_id].provider_message_id, message_id
        else:  # it never left: planned again
            assert after[message_id] == MessageState.PLANNED, message_id
    later.dispatcher.tick()
    final = h.states(later)
    assert set(final.values()) == {MessageState.SENT}
    assert Counter(fake.fake.ids()) == Counter(ids)  # everyone got their message exactly once


def _wait_until_quiet(fake: RunningFake, quiet: float = 0.5, limit: float = 10.0) -> None:
    """Until the fake has accepted nothing new for `quiet` seconds."""
    deadline = time.monotonic() + limit
    seen, since = len(fake.fake.ids()), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now_seen = len(fake.fake.ids())
        if now_seen != seen:
            seen, since = now_seen, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
    raise AssertionError("the fake provider kept accepting messages after the worker died")
