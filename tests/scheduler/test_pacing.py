"""Pacing: the token bucket's arithmetic (property tests) and its sharing through the database
between workers; texts are counted in segments."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from nurture.app import NurtureApp
from providers.memory import MemoryChannel
from scheduler.pacing import Pacer, Rate, refill, take

NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)


class FakeWall:
    """Wall time that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@given(
    rate=st.floats(0.1, 500),
    costs=st.lists(st.integers(1, 20), min_size=1, max_size=40),
    gaps=st.lists(st.floats(0, 5), min_size=40, max_size=40),
)
def test_sends_never_outrun_burst_plus_rate_times_elapsed(
    rate: float, costs: list[int], gaps: list[float]
) -> None:
    """Whatever the arrival pattern, what is released by time t is at most burst + rate * t."""
    limit = Rate.of(rate)
    tokens, clock, released = limit.burst, 0.0, 0.0
    last = 0.0
    for cost, gap in zip(costs, gaps, strict=False):
        clock += gap
        tokens = refill(tokens, clock - last, limit)
        last = clock
        tokens, wait = take(tokens, cost, limit)
        released += cost
        assert released <= limit.burst + rate * (clock + wait) + 1e-6
        assert wait >= 0


@given(tokens=st.floats(-1000, 1000), elapsed=st.floats(0, 1e6), rate=st.floats(0.01, 1e4))
def test_refill_never_exceeds_the_burst(tokens: float, elapsed: float, rate: float) -> None:
    limit = Rate.of(rate)
    assert refill(tokens, elapsed, limit) <= max(limit.burst, tokens)


def test_two_workers_draw_from_one_bucket(nurture_app: NurtureApp) -> None:
    wall = FakeWall()
    first = Pacer(nurture_app.sessions, wall=wall, sleep=wall.sleep)
    second = Pacer(nurture_app.sessions, wall=wall, sleep=wall.sleep)
    rate = Rate.of(2.0)  # two per second, burst two
    assert first.reserve("twilio:+13105550100", 2, rate) == 0
    # The other worker, at the same instant, owes the first one's use: it waits.
    assert second.reserve("twilio:+13105550100", 2, rate) == 1.0
    assert first.reserve("twilio:+13105550100", 1, rate) == 1.5
    wall.now += 10
    assert second.reserve("twilio:+13105550100", 1, rate) == 0  # refilled
    # Another sender has its own bucket.
    assert first.reserve("twilio:+13105550199", 2, rate) == 0


def test_texts_are_paced_in_segments_per_second(
    h: Any, nurture_app: NurtureApp, channel: MemoryChannel
) -> None:
    channel.rate_bucket = "memory:sender"
    app = nurture_app
    from core.settings import load_settings

    app.settings = load_settings(
        **{
            **app.settings.model_dump(),
            "sms": {**app.settings.sms.model_dump(), "segments_per_second": 2.0},
        }
    )
    app.__dict__.pop("dispatcher", None)
    wall = FakeWall()
    app.dispatcher.pacer = Pacer(app.sessions, wall=wall, sleep=wall.sleep)
    h.seed(app, texts=6, due=NOW)
    sent = 0
    for _ in range(10):
        sent += app.dispatcher.tick().sent
        if sent == 6:
            break
    assert sent == 6
    segments = sum(text.segments for text in channel.texts)
    # Two segments per second with a burst of two: the waits add up to (segments - 2) / 2 s.
    assert abs(sum(wall.slept) - (segments - 2) / 2) < 1e-6
    assert max(len(channel.texts), 1) == 6
