"""When a step may go out: its send window and, for texts, quiet hours, in the contact's zone.

TCPA: no marketing text before 8:00 or after 21:00 at the recipient's location. Local times are
built with zoneinfo for each calendar day, so daylight-saving changes move the UTC instant and
never the local hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from campaigns.definitions import SendWindow

SEARCH_DAYS = 15


@dataclass(frozen=True)
class QuietHours:
    """Texts are allowed from `allowed_from` to `allowed_until`, local time."""

    allowed_from: time = time(8, 0)
    allowed_until: time = time(21, 0)


def _local(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """A wall-clock time on a day. fold=0 (PEP 495) maps a time inside a spring-forward gap to the
    instant after the gap and an ambiguous fall-back time to its first occurrence."""
    return datetime.combine(day, clock).replace(tzinfo=zone)


def _bounds(window: SendWindow, quiet: QuietHours | None) -> tuple[time, time]:
    if quiet is None:
        return window.start, window.end
    return max(window.start, quiet.allowed_from), min(window.end, quiet.allowed_until)


def next_allowed(
    at: datetime, zone_name: str, window: SendWindow, quiet: QuietHours | None
) -> datetime | None:
    """The earliest instant >= `at` inside the window (and quiet hours); None if there is none."""
    zone = ZoneInfo(zone_name)
    start_clock, end_clock = _bounds(window, quiet)
    if start_clock >= end_clock:
        return None
    local_day = at.astimezone(zone).date()
    for offset in range(SEARCH_DAYS):
        day = local_day + timedelta(days=offset)
        if day.weekday() not in window.weekday_numbers:
            continue
        opens, closes = _local(day, start_clock, zone), _local(day, end_clock, zone)
        if at < opens:
            return opens.astimezone(UTC)
        if at < closes:
            return at.astimezone(UTC)
    return None
