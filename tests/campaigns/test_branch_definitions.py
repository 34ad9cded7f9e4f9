"""Branches in a definition (issue 18): how they are written, which step follows which, and each
refusal of `campaigns validate` with its one line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from campaigns.definitions import Sequence, load_sequence
from campaigns.paths import paths_of, problems
from campaigns.validation import ValidationReport
from core.errors import InputError

HEAD = 'name = "x"\ntitle = "x"\ntemplate_folder = "spasm-relief"\n'
Check = Any
Edit = Any


def _step(name: str, channel: str = "email", **extra: Any) -> dict[str, Any]:
    template = "01-welcome" if channel == "email" else "02-cycle"
    return {"name": name, "channel": channel, "template": template, **extra}


def _sequence(*steps: dict[str, Any]) -> Sequence:
    return Sequence.model_validate(
        {"name": "x", "title": "x", "template_folder": "spasm-relief", "steps": list(steps)}
    )


def _branch(**targets: str) -> dict[str, str]:
    return {"within": "2d", **targets}


def test_a_branch_reads_as_written_in_the_toml_and_survives_the_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text(
        HEAD + '[[steps]]\nname = "visit"\nchannel = "email"\ntemplate = "01-welcome"\n'
        'then = { clicked = "thanks", otherwise = "reminder", within = "2d" }\n'
        '[[steps]]\nname = "reminder"\nchannel = "sms"\ntemplate = "02-cycle"\n'
        '[[steps]]\nname = "thanks"\nchannel = "email"\ntemplate = "03-cycle"\n'
    )
    sequence = load_sequence(path)
    branch = sequence.steps[0].then
    assert branch is not None and branch.within == timedelta(days=2)
    assert branch.targets() == {"clicked": "thanks", "otherwise": "reminder"}
    assert Sequence.from_snapshot(sequence.snapshot()) == sequence
    paths = paths_of(sequence)
    decision = paths.decisions[0]
    assert decision is not None and decision.waits_for_click and not decision.waits_for_reply
    assert (decision.target("clicked"), decision.target("otherwise")) == (2, 1)
    assert paths.after(-1) == 0 and paths.after(1) == 2 and paths.after(2) is None


@pytest.mark.parametrize(
    ("then", "message"),
    [
        ({"otherwise": "b"}, "within"),
        ({"otherwise": "b", "clicked": "c", "within": "0m"}, "`within` must be a positive time"),
        ({"otherwise": "b", "within": "2d"}, "a branch waits for `clicked` or `replied`"),
        ({"otherwise": "b", "clicked": "c", "within": "soon"}, "not a duration"),
        ({"otherwise": "b", "clicked": "c", "within": "2d", "opened": "d"}, "opened"),
    ],
)
def test_a_branch_that_cannot_work_does_not_load(
    tmp_path: Path, then: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _sequence(_step("a", then=then), _step("b"), _step("c"))


def test_a_step_has_a_branch_or_next_not_both() -> None:
    with pytest.raises(ValueError, match=r"`then` .* or `next`, not both"):
        _sequence(_step("a", then=_branch(clicked="b", otherwise="b"), next="b"), _step("b"))


def test_next_skips_ahead_and_end_ends() -> None:
    sequence = _sequence(
        _step("a", then=_branch(clicked="c", otherwise="b")),
        _step("b", next="end"),
        _step("c"),
    )
    assert problems(sequence) == []
    assert paths_of(sequence).following == (1, None, None)


@pytest.mark.parametrize(
    ("steps", "line"),
    [
        (
            [_step("a", then=_branch(clicked="nowhere", otherwise="b")), _step("b")],
            "step 'a' leads to 'nowhere', which is no step of this sequence",
        ),
        (
            [_step("a", next="c"), _step("b"), _step("c")],
            "step 'b' is unreachable: no step leads to it",
        ),
        (
            [_step("a", then=_branch(clicked="end", otherwise="b")), _step("b", next="a")],
            "the steps loop: a -> b -> a",
        ),
        (
            [_step("a"), _step("b", next="a")],
            "a path never ends: from step 'a' no way leads to the end (a -> b -> a)",
        ),
    ],
    ids=["unknown target", "unreachable", "cycle", "never ends"],
)
def test_the_paths_validate_refuses(
    steps: list[dict[str, Any]], line: str, check: Check, settings: Any
) -> None:
    sequence = _sequence(*steps)
    assert [found for found in problems(sequence) if line in found], problems(sequence)
    report: ValidationReport = check(sequence)
    assert any(problem.startswith(f"x: {line}") for problem in report.problems), report.problems


def test_replied_waits_on_a_text_step_only(check: Check) -> None:
    on_email = _sequence(_step("a", then=_branch(replied="end", otherwise="b")), _step("b"))
    report = check(on_email)
    assert any(
        "step 1 (a, email): `replied` waits for a text reply, so it belongs on a text step" in p
        for p in report.problems
    ), report.problems
    on_text = _sequence(_step("a", "sms", then=_branch(replied="end", otherwise="b")), _step("b"))
    assert not [p for p in check(on_text).problems if "replied" in p]


def test_clicked_on_a_step_without_a_booking_link_is_a_warning(check: Check, edit: Edit) -> None:
    edit("spasm-relief/02-cycle.sms.txt", "{{ booking_link() }}", "our website")
    sequence = _sequence(_step("a", "sms", then=_branch(clicked="end", otherwise="b")), _step("b"))
    report = check(sequence)
    assert any(
        "step 1 (a, sms): `clicked` waits for a click on the booking link, and this step's "
        "message has none" in warning
        for warning in report.warnings
    ), report.warnings


def test_spasm_relief_reminds_only_who_did_not_click_the_first_visit_email() -> None:
    sequence = load_sequence("spasm-relief")
    names = [step.name for step in sequence.steps]
    visit = sequence.steps[names.index("first-visit")]
    assert visit.then is not None and visit.then.within == timedelta(days=2)
    assert visit.then.targets() == {"clicked": "questions-text", "otherwise": "reminder-text"}
    paths = paths_of(sequence)
    reminder = names.index("reminder-text")
    assert paths.after(reminder) == names.index("questions-text")
    assert problems(sequence) == []


def test_a_definition_with_a_broken_branch_names_it_when_loaded(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text(
        HEAD + '[[steps]]\nname = "a"\nchannel = "email"\ntemplate = "01-welcome"\n'
        'then = { clicked = "end", within = "2d" }\n'
    )
    with pytest.raises(InputError, match=r"steps\.0\.then\.otherwise: Field required"):
        load_sequence(path)


def test_a_launch_is_refused_with_the_same_line(settings: Any) -> None:
    from campaigns.validation import ensure_valid
    from core.errors import ValidationFailed

    looping = _sequence(
        _step("a", then=_branch(clicked="end", otherwise="b")), _step("b", next="a")
    )
    with pytest.raises(ValidationFailed) as refused:
        ensure_valid(looping, settings)
    assert "x: the steps loop: a -> b -> a" in str(refused.value)
