"""Per-key rate limits: a token bucket per API key, in this process, by the app's clock.

In-process on purpose: the check costs no database round trip. With several web processes each
has its own buckets, so a client may reach the limit times the number of processes; the limit
guards the server against a runaway client, it is not a billing quota. (The database-backed
bucket in scheduler.pacing is shared, but is meant for a few provider senders, not a write per
API request.)
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import datetime

from core.clock import Clock

#: A burst of 60 requests, then one a second: far above what a clinic's website, booking
#: system or CRM sends, far below what hurts the server.
BURST, PER_SECOND = 60.0, 1.0


@dataclass
class _Bucket:
    tokens: float
    at: datetime


class RateLimiter:
    def __init__(self, clock: Clock, *, burst: float = BURST, per_second: float = PER_SECOND):
        self.clock, self.burst, self.per_second = clock, burst, per_second
        self._buckets: dict[int, _Bucket] = {}
        self._lock = threading.Lock()  # sync endpoints run on a thread pool

    def take(self, key_id: int) -> int:
        """0 when the request may go ahead, else the whole seconds to wait (Retry-After)."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.setdefault(key_id, _Bucket(self.burst, now))
            elapsed = max((now - bucket.at).total_seconds(), 0.0)
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.per_second)
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0
            return max(1, math.ceil((1.0 - bucket.tokens) / self.per_second))
