"""`campaigns validate` warns when a text step's hours reach outside 08:00-20:00: Florida,
Oklahoma and Maryland numbers get texts only in those hours (contacts.state_rules)."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from campaigns.definitions import Sequence, load_sequence
from campaigns.validation import validate_sequence
from core.settings import Settings, load_settings

STATES = "Florida, Oklahoma and Maryland"


def _texting_from(start: str, end: str) -> Sequence:
    """spasm-relief with its first text step sent between `start` and `end`."""
    data = load_sequence("spasm-relief").snapshot()
    data["steps"][1]["window"] = {"days": "mon-fri", "start": start, "end": end}
    return Sequence.model_validate(data)


def _state_warnings(sequence: Sequence, settings: Settings) -> list[str]:
    report = validate_sequence(sequence, settings)
    assert report.problems == []
    return [warning for warning in report.warnings if STATES in warning]


@pytest.mark.parametrize(
    ("start", "end", "only"),  # only: the hours those numbers keep
    [
        ("08:00", "21:00", "08:00-20:00"),
        ("12:00", "20:30", "12:00-20:00"),
        ("19:00", "21:00", "19:00-20:00"),
    ],
)
def test_a_text_window_reaching_outside_8_to_20_is_a_warning(
    start: str, end: str, only: str, settings: Settings
) -> None:
    [warning] = _state_warnings(_texting_from(start, end), settings)
    assert warning.startswith("spasm-relief step 2 (") and ", sms): texting hours" in warning
    assert "reach outside 08:00-20:00" in warning and "Fla. Stat. 501.059" in warning
    assert f"get this text only {only}" in warning


def test_a_window_wholly_after_8pm_says_those_numbers_never_get_the_text(
    settings: Settings,
) -> None:
    [warning] = _state_warnings(_texting_from("20:00", "21:00"), settings)
    assert "lie outside 08:00-20:00" in warning and "never get this text" in warning


@pytest.mark.parametrize(("start", "end"), [("10:00", "18:00"), ("08:00", "20:00")])
def test_a_window_inside_8_to_20_has_no_warning(start: str, end: str, settings: Settings) -> None:
    assert _state_warnings(_texting_from(start, end), settings) == []


def test_the_clinics_own_quiet_hours_already_inside_8_to_20_need_no_warning() -> None:
    settings = load_settings(scheduler={"sms_quiet_hours_start": "20:00"})
    assert _state_warnings(_texting_from("08:00", "21:00"), settings) == []


def test_the_validate_command_prints_the_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from nurture.cli.main import app

    monkeypatch.setenv("COLUMNS", "400")
    result = CliRunner().invoke(app, ["campaigns", "validate", "demo"])
    assert result.exit_code == 0, result.output
    assert f"numbers in {STATES} get this text only 08:00-20:00" in result.output
