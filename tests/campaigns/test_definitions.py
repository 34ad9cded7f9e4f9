"""Sequence definitions as staff write them: durations, clocks, windows, defaults and refusals."""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.definitions import load_sequence, parse_clock, parse_duration
from core.errors import InputError

HEAD = 'name = "x"\ntitle = "x"\ntemplate_folder = "spasm-relief"\n'
STEP = '[[steps]]\nname = "a"\nchannel = "email"\ntemplate = "01-welcome"\n'


@given(
    st.integers(0, 8),
    st.integers(0, 30),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
)
def test_duration_parts_add_up(weeks: int, days: int, hours: int, minutes: int, secs: int) -> None:
    text = f"{weeks}w{days}d{hours}h{minutes}m{secs}s"
    expected = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=secs)
    assert parse_duration(text) == expected
    assert parse_duration(expected.total_seconds()) == expected


@pytest.mark.parametrize("text", ["", "3x", "d3", "-3d", "3 days", "1d-2h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "expected"), [("8:00", time(8)), ("20:30", time(20, 30)), ("24:00", time(23, 59, 59))]
)
def test_clocks(text: str, expected: time) -> None:
    assert parse_clock(text) == expected


@pytest.mark.parametrize("text", ["25:00", "8", "8:60", "noon"])
def test_bad_clocks(text: str) -> None:
    with pytest.raises(ValueError, match="not a time of day"):
        parse_clock(text)


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "x.toml"
    path.write_text(text)
    return load_sequence(path)


def test_weekday_ranges_and_defaults(tmp_path: Path) -> None:
    sequence = _load(
        tmp_path,
        HEAD + STEP + 'window = { days = "tue-thu", start = "9:00", end = "17:00" }\n'
        '[[steps]]\nname = "b"\nchannel = "sms"\ntemplate = "02-cycle"\ndelay = "1d12h"\n',
    )
    email, text = sequence.steps
    assert email.window.days == ("tue", "wed", "thu")
    assert text.delay == timedelta(days=1, hours=12)
    assert (text.window.start, text.window.end) == (time(8), time(21))  # TCPA by default
    assert text.max_segments == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('reason = ""\n', "reason"),
        ('custom = "x"\n', "custom"),  # unknown keys are typos, not silently ignored
        ("", "steps"),  # no steps at all
        # A tracked link that would run script or read files in a recipient's browser.
        ('link_destinations = { video = "javascript:alert(1)" }\n', "link_destinations.video"),
        ('link_destinations = { map = "data:text/html,hi" }\n', "link_destinations.map"),
        ('link_destinations = { faq = "www.example.com/faq" }\n', "link_destinations.faq"),
    ],
)
def test_refused_definitions(tmp_path: Path, extra: str, message: str) -> None:
    body = HEAD + extra + (STEP if message != "steps" else "")
    with pytest.raises(InputError, match=message):
        _load(tmp_path, body)


@pytest.mark.parametrize(
    "step",
    [
        STEP.replace('"01-welcome"', '"../../etc/passwd"'),
        STEP + "max_segments = 0\n",
        STEP + "max_segments = 11\n",
        STEP + 'window = { start = "18:00", end = "09:00" }\n',
        STEP + 'window = { days = "someday" }\n',
        STEP + STEP,  # duplicate step names
    ],
)
def test_refused_steps(tmp_path: Path, step: str) -> None:
    with pytest.raises(InputError):
        _load(tmp_path, HEAD + step)


def test_snapshot_round_trip() -> None:
    sequence = load_sequence("spasm-relief")
    assert type(sequence).from_snapshot(sequence.snapshot()) == sequence
