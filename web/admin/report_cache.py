"""Figures of large campaigns, computed at most once per TTL per campaign, whoever is looking.

A report reads the index entries of one campaign (see campaigns.reports), so its cost grows with
the campaign: about a second for a million contacts on this 2-core machine. Small campaigns stay
live on every view; from LIVE_BELOW enrolled contacts on, page views within TTL_SECONDS share one
computation, and the page says how old its figures are and offers a refresh.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request

TTL_SECONDS = 30.0
LIVE_BELOW = 50_000


@dataclass(frozen=True)
class Figures:
    value: Any
    computed_at: datetime
    cached: bool  # True when this view reused an earlier computation


class ReportCache:
    def __init__(self, ttl: float | None = None, live_below: int | None = None) -> None:
        self.ttl = TTL_SECONDS if ttl is None else ttl
        self.live_below = LIVE_BELOW if live_below is None else live_below
        self._entries: dict[Hashable, tuple[float, Any, datetime]] = {}
        self._lock = threading.Lock()

    def get(
        self,
        key: Hashable,
        compute: Callable[[], tuple[Any, int]],
        *,
        now: datetime,
        fresh: bool = False,
    ) -> Figures:
        """`compute` returns (figures, size); only figures of a size >= live_below are kept."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and not fresh and entry[0] > time.monotonic():
            return Figures(entry[1], entry[2], cached=True)
        value, size = compute()
        with self._lock:
            if size >= self.live_below:
                if len(self._entries) > 512:
                    self._entries.clear()
                self._entries[key] = (time.monotonic() + self.ttl, value, now)
            else:
                self._entries.pop(key, None)
        return Figures(value, now, cached=False)


def report_cache(request: Request) -> ReportCache:
    """One cache per ASGI app (per process), created on first use."""
    cache = getattr(request.app.state, "admin_report_cache", None)
    if cache is None:
        cache = request.app.state.admin_report_cache = ReportCache()
    return cache
