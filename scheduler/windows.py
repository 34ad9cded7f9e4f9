"""When a step may go out: its send window and, for texts, quiet hours, in the contact's zone.

TCPA: no marketing text before 8:00 or after 21:00 at the recipient's location; for a number
in a state with stricter hours (Florida, Oklahoma, Maryland: contacts.state_rules) the state's
hours narrow them further. Local times are built with zoneinfo for each calendar day, so
daylight-saving changes move the UTC instant and never the local hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from campaigns.definitions import SendWindow
from contacts.state_rules import StateRule

SEARCH_DAYS = 15


@dataclass(frozen=True)
class QuietHours:
    """Texts are allowed from `allowed_from` to `allowed_until`, local time."""

    allowed_from: time = time(8, 0)
    allowed_until: time = time(21, 0)


@lru_cache(maxsize=64)  # a handful of (clinic hours, state rule) pairs: one object each
def texting_hours(quiet: QuietHours, rule: StateRule | None) -> QuietHours:
    """The clinic's texting hours narrowed by the number's state rule: the strictest holds."""
    if rule is None:
        return quiet
    return QuietHours(
        max(quiet.allowed_from, rule.allowed_from), min(quiet.allowed_until, rule.allowed_until)
    )


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


def next_allowed_text(
    at: datetime,
    zone_name: str,
    window: SendWindow,
    quiet: QuietHours,
    rule: StateRule | None,
    texted: list[datetime],
) -> datetime | None:
    """The earliest instant >= `at` a text may go: inside the window and the clinic's texting
    hours narrowed by the number's state rule, and, under a state rule, once fewer than its
    limit of the contact's texts `texted` lie within the day before (contacts.state_rules)."""
    hours = texting_hours(quiet, rule)
    when = next_allowed(at, zone_name, window, hours)
    if rule is None:
        return when
    while when is not None and (slot := rule.next_slot(texted, when)) > when:
        when = next_allowed(slot, zone_name, window, hours)
    return when
