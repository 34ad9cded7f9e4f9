"""Exponential backoff with full jitter (AWS architecture blog) for transient provider errors."""

from __future__ import annotations

import random
from datetime import timedelta


def backoff(attempt: int, base_seconds: float, *, cap_seconds: float = 3600.0) -> timedelta:
    ceiling = min(cap_seconds, base_seconds * (2 ** max(attempt - 1, 0)))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))
