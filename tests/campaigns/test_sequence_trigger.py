"""A sequence says what enrolls a contact (launch or a booking event) and when they re-enter."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from campaigns.definitions import Sequence, load_sequence
from core.errors import InputError

HEAD = 'name = "x"\ntitle = "x"\ntemplate_folder = "spasm-relief"\n'
NO_EXIT = "[exit]\nbooked = false\n"
STEP = '[[steps]]\nname = "a"\nchannel = "email"\ntemplate = "01-welcome"\n'


def _load(tmp_path: Path, text: str) -> Sequence:
    path = tmp_path / "x.toml"
    path.write_text(text)
    return load_sequence(path)


def test_a_sequence_starts_at_launch_and_never_re_enters_by_default(tmp_path: Path) -> None:
    sequence = _load(tmp_path, HEAD + STEP)
    assert sequence.trigger == "launch"
    assert sequence.reenter_after is None


def test_a_booking_trigger_and_re_entry_survive_the_snapshot(tmp_path: Path) -> None:
    sequence = _load(
        tmp_path, HEAD + 'trigger = "no_show"\nreenter_after = "30d"\n' + NO_EXIT + STEP
    )
    assert sequence.trigger == "no_show"
    assert sequence.reenter_after == timedelta(days=30)
    again = Sequence.from_snapshot(sequence.snapshot())
    assert (again.trigger, again.reenter_after) == ("no_show", timedelta(days=30))


@pytest.mark.parametrize(
    ("line", "field"), [('trigger = "clicked"', "trigger"), ('reenter_after = "soon"', "reenter")]
)
def test_an_unknown_trigger_or_bad_re_entry_is_refused(
    tmp_path: Path, line: str, field: str
) -> None:
    with pytest.raises(InputError, match=field):
        _load(tmp_path, HEAD + line + "\n" + STEP)


def test_a_sequence_started_by_an_event_must_not_exit_on_booking(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"started by `booked` must say \[exit\] booked = false"):
        _load(tmp_path, HEAD + 'trigger = "booked"\n' + STEP)
    sequence = _load(tmp_path, HEAD + 'trigger = "booked"\n[exit]\nbooked = false\n' + STEP)
    assert sequence.exit.booked is False


def test_a_step_timed_before_the_visit_needs_a_sequence_a_booking_starts(tmp_path: Path) -> None:
    timed = STEP + 'before_appointment = "1d"\n'
    booked = _load(tmp_path, HEAD + 'trigger = "booked"\n' + NO_EXIT + timed)
    assert booked.steps[0].before_appointment == timedelta(days=1)
    with pytest.raises(InputError, match="before_appointment, which only a sequence started"):
        _load(tmp_path, HEAD + timed)
