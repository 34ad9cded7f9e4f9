"""Words and times for staff: a step's delay and window, and the launch form's start time."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from campaigns.definitions import WEEKDAYS, SendWindow


def describe_delay(delay: timedelta) -> str:
    if not delay:
        return "at once"
    days, rest = divmod(int(delay.total_seconds()), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [
        f"{days} d" if days else "",
        f"{hours} h" if hours else "",
        f"{minutes} min" if minutes else "",
    ]
    return " ".join(part for part in parts if part) or f"{int(delay.total_seconds())} s"


def describe_window(window: SendWindow) -> str:
    days = list(window.days)
    if days == list(WEEKDAYS):
        day_text = "every day"
    elif days == list(WEEKDAYS[:5]):
        day_text = "Mon to Fri"
    else:
        day_text = ", ".join(day.capitalize() for day in days)
    return f"{day_text}, {window.start:%H:%M} to {window.end:%H:%M} local"


def parse_start(text: str, zone: str, now: datetime) -> datetime:
    """The launch form's local date and time (clinic zone) as UTC; empty means now."""
    text = text.strip()
    if not text:
        return now
    try:
        local = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("The start must be a date and time like 2026-12-01T09:00.") from None
    if local.tzinfo is None:
        local = local.replace(tzinfo=ZoneInfo(zone))
    start = local.astimezone(ZoneInfo("UTC"))
    if start < now - timedelta(minutes=5):
        raise ValueError("The start time is in the past. Leave it empty to start now.")
    if start > now + timedelta(days=366):
        raise ValueError("The start time is more than a year away.")
    return max(start, now)
