"""Time arithmetic behind the reports and the launch form (hypothesis), and the SVG charts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.reports import DailyPoint, day_bounds
from web.admin.charts import _tick_step, daily_svg, funnel_svg
from web.admin.formatting import parse_start

ZONES = st.sampled_from(
    ["America/Los_Angeles", "America/New_York", "Europe/London", "Australia/Sydney", "UTC"]
)
NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)


@given(first=st.dates(date(2020, 1, 1), date(2035, 12, 31)), days=st.integers(1, 40), zone=ZONES)
def test_day_bounds_tile_local_days_without_gaps(first: date, days: int, zone: str) -> None:
    bounds = day_bounds(first, days, zone)
    assert len(bounds) == days
    tz = ZoneInfo(zone)
    for n, (lo, hi) in enumerate(bounds):
        assert lo.astimezone(tz).date() == first + timedelta(days=n)
        assert lo.astimezone(tz).time() == datetime.min.time()
        assert hi - lo in (timedelta(hours=23), timedelta(hours=24), timedelta(hours=25))
    assert all(a[1] == b[0] for a, b in pairwise(bounds))


def test_a_spring_forward_day_in_los_angeles_has_23_hours() -> None:
    ((lo, hi),) = day_bounds(date(2026, 3, 8), 1, "America/Los_Angeles")
    assert hi - lo == timedelta(hours=23)
    ((lo, hi),) = day_bounds(date(2026, 11, 1), 1, "America/Los_Angeles")
    assert hi - lo == timedelta(hours=25)


@given(minutes=st.integers(0, 365 * 24 * 60), zone=ZONES)
def test_a_launch_time_keeps_its_local_wall_clock(minutes: int, zone: str) -> None:
    local = (NOW + timedelta(minutes=minutes)).astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    text = local.strftime("%Y-%m-%dT%H:%M")
    start = parse_start(text, zone, NOW)
    assert start >= NOW
    if start > NOW:
        assert start.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M") == text


def test_an_empty_start_means_now_and_junk_is_refused() -> None:
    assert parse_start("  ", "UTC", NOW) == NOW
    for junk in ("tomorrow", "2026-13-01T09:00", "09:00"):
        with pytest.raises(ValueError):
            parse_start(junk, "UTC", NOW)


@given(peak=st.integers(0, 10**9))
def test_the_axis_reaches_the_peak_in_round_steps(peak: int) -> None:
    step = _tick_step(peak)
    assert step * 4 >= peak and (step == 1 or step * 4 < peak * 10 + 40)
    assert str(step).rstrip("0") in ("1", "2", "5")


def test_chart_text_is_escaped_and_described() -> None:
    funnel = str(funnel_svg([("enrolled", 10), ("sent", 5)], title='<b>"x"</b>'))
    assert "<b>" not in funnel and "&lt;b&gt;" in funnel and 'role="img"' in funnel
    assert "5 (50%)" in funnel
    points = [DailyPoint(date(2026, 12, d), sent=d) for d in range(1, 4)]
    daily = str(daily_svg(points, ("sent",), title="t"))
    assert daily.count("<polyline") == 1 and "01 Dec" in daily and "series-sent" in daily
