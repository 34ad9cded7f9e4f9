"""Launching an invalid sequence is refused with the very lines `validate` prints, and nothing is
written. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from campaigns import lifecycle
from campaigns.definitions import Sequence, load_sequence
from campaigns.validation import validate_sequence
from core.clock import FrozenClock
from core.errors import ValidationFailed
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import Campaign, Enrollment


def _broken() -> Sequence:
    data = load_sequence("spasm-relief").snapshot()
    data["name"] = "broken"
    data["steps"][1]["window"] = {"start": "07:00", "end": "22:00"}  # outside TCPA hours
    data["steps"][2]["template"] = "99-missing"
    return Sequence.model_validate(data)


def test_invalid_sequence_is_refused_with_the_validate_messages(
    nurture_app: NurtureApp, frozen_clock: FrozenClock, make_contact: object
) -> None:
    make_contact()  # type: ignore[operator]
    sequence = _broken()
    expected = validate_sequence(sequence, nurture_app.settings).problems
    assert len(expected) >= 2

    with pytest.raises(ValidationFailed) as refused:
        with transaction(nurture_app.sessions) as session:
            lifecycle.launch(session, sequence, now=frozen_clock(), settings=nurture_app.settings)

    assert refused.value.problems == expected
    assert any("TCPA" in p for p in refused.value.problems)
    assert any("unknown template" in p for p in refused.value.problems)
    with transaction(nurture_app.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Campaign)) == 0
        assert session.scalar(select(func.count()).select_from(Enrollment)) == 0


def test_valid_sequence_launches(
    nurture_app: NurtureApp, frozen_clock: FrozenClock, make_contact: object
) -> None:
    make_contact()  # type: ignore[operator]
    with transaction(nurture_app.sessions) as session:
        campaign, enrolled = lifecycle.launch(
            session, load_sequence("spasm-relief"), now=frozen_clock()
        )
        assert (campaign.name, enrolled) == ("spasm-relief", 1)
        assert campaign.definition["steps"][1]["max_segments"] == 2
