"""Pacing: one token bucket per provider account or sender, shared by every worker.

Providers limit per sender (Twilio queues a long code at ~1 segment/s, 10DLC by tier, a short
code ~100/s) and per account (SendGrid answers 429 past its limit). The bucket lives in the
`rate_buckets` table, so any number of workers on any number of machines draw from one budget.

A sender reserves its tokens before it sends and may drive the bucket below zero: the debt is the
time it must wait (like GCRA), so each worker learns its wait from one short transaction instead
of polling (the dispatcher reserves in the transaction that marks the sub-batch "sending", and
only when it must wait does that take a second one). Bucket time is real wall time, never the
engine's (possibly frozen) business clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from storage.db import transaction
from storage.models import RateBucket


@dataclass(frozen=True)
class Rate:
    """`per_second` tokens refill each second, up to `burst` saved up."""

    per_second: float
    burst: float

    @classmethod
    def of(cls, per_second: float) -> Rate:
        return cls(per_second, max(1.0, per_second))


def refill(tokens: float, elapsed: float, rate: Rate) -> float:
    return min(rate.burst, tokens + max(0.0, elapsed) * rate.per_second)


def take(tokens: float, cost: float, rate: Rate) -> tuple[float, float]:
    """Tokens left after taking `cost` (maybe negative) and the seconds to wait before sending."""
    left = tokens - cost
    return left, (-left / rate.per_second if left < 0 else 0.0)


class Pacer:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.sessions, self.wall, self.sleep = sessions, wall, sleep

    def reserve(self, name: str, cost: float, rate: Rate) -> float:
        """Take `cost` tokens from bucket `name`; return how long to wait before using them."""
        for _ in range(3):
            try:
                with transaction(self.sessions) as session:
                    return self.reserve_in(session, name, cost, rate)
            except IntegrityError:  # two workers created the same new bucket at once
                continue
        raise RuntimeError(f"could not reserve from rate bucket {name}")

    def reserve_in(self, session: Session, name: str, cost: float, rate: Rate) -> float:
        """`reserve` inside the caller's transaction. A bucket that does not exist yet is made
        here; two workers making the same one at once fail with IntegrityError (`reserve`
        retries; a caller of this method makes its buckets first, with `reserve(name, 0, rate)`).
        """
        now = self.wall()
        stamp = datetime.fromtimestamp(now, UTC)
        connection = session.connection()  # Core: this runs once per sub-batch
        found = connection.execute(
            select(RateBucket.tokens, RateBucket.updated_at)
            .where(RateBucket.name == name)
            .with_for_update()
        ).first()
        if found is None:
            tokens, elapsed = rate.burst, 0.0
            connection.execute(
                insert(RateBucket).values(name=name, tokens=tokens, updated_at=stamp)
            )
        else:
            tokens, elapsed = found.tokens, now - found.updated_at.timestamp()
        left, wait = take(refill(tokens, elapsed, rate), cost, rate)
        connection.execute(
            update(RateBucket).where(RateBucket.name == name).values(tokens=left, updated_at=stamp)
        )
        return wait

    def acquire(self, name: str, cost: float, rate: Rate) -> float:
        """Reserve and sleep out the wait; returns the seconds slept."""
        wait = self.reserve(name, cost, rate)
        if wait > 0:
            self.sleep(wait)
        return wait
