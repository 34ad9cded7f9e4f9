"""`simulate` with branches (issue 18): each contact goes one way, the shares follow the stated
or observed rates, and the CLI prints each branch with its share."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from campaigns import lifecycle
from campaigns.definitions import load_sequence
from core.clock import FrozenClock
from nurture.app import NurtureApp
from scheduler.planner import quiet_hours
from scheduler.simulate import (
    BranchRates,
    branch_lines,
    observed_rates,
    simulate_branches,
)
from storage.db import transaction
from storage.models import Campaign, Enrollment


def _project(app: NurtureApp, clock: FrozenClock, rates: BranchRates | None) -> Any:
    sequence = load_sequence("spasm-relief")
    with transaction(app.sessions, immediate=False) as session:
        return sequence, *simulate_branches(
            session,
            sequence,
            campaign=None,
            start=clock(),
            days=40,
            quiet=quiet_hours(app.settings),
            sms_cap=timedelta(hours=24),
            rates=rates,
        )


def test_only_the_contacts_on_the_otherwise_branch_get_the_reminder(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock
) -> None:
    for n in range(10):
        make_contact(phone=f"+1310555{n:04d}", sms=True)
    sequence, rows, shares = _project(nurture_app, frozen_clock, BranchRates(0.3, 0.0, "given"))
    ways = {(way.event, way.target): (way.share, way.contacts) for way in shares}
    assert ways == {
        ("clicked", "questions-text"): (0.3, 3),
        ("otherwise", "reminder-text"): (0.7, 7),
    }
    by_contact: dict[int, dict[str, Any]] = {}
    for row in rows:
        by_contact.setdefault(row.contact_id, {})[row.step] = row
    clicked = {
        c for c, steps in by_contact.items() if "first-visit:clicked" in steps["invitation"].path
    }
    assert len(clicked) == 3
    for contact, steps in by_contact.items():
        assert ("reminder-text" in steps) == (contact not in clicked)
        if contact not in clicked:
            reminder, visit = steps["reminder-text"], steps["first-visit"]
            assert reminder.at >= visit.at + timedelta(days=2)
            assert reminder.path == "first-visit:otherwise"
            assert steps["questions-text"].at >= reminder.at + timedelta(days=3)
    assert branch_lines(sequence, shares) == [
        "after first-visit, within 2d: clicked 30% -> questions-text (3 contacts); "
        "otherwise 70% -> reminder-text (7 contacts) (shares given)"
    ]


def test_a_running_campaign_projects_its_own_shares_once_enough_are_decided(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock
) -> None:
    for n in range(20):
        make_contact(phone=f"+1310556{n:04d}", sms=True)
    with transaction(nurture_app.sessions) as session:
        campaign, _ = lifecycle.launch(
            session,
            load_sequence("spasm-relief"),
            now=frozen_clock(),
            settings=nurture_app.settings,
        )
        assert observed_rates(session, campaign) is None  # nobody decided: assume
        first = session.scalar(select(func.min(Enrollment.id)))
        session.execute(
            update(Enrollment).where(Enrollment.id == first).values(path="first-visit:otherwise")
        )
        assert observed_rates(session, campaign) is None  # 1 decided: too few to say
    with transaction(nurture_app.sessions) as session:
        session.execute(update(Enrollment).values(path="first-visit:otherwise"))
        session.execute(
            update(Enrollment)
            .where(Enrollment.id < (first or 0) + 5)
            .values(path="first-visit:clicked")
        )
        campaign = session.get_one(Campaign, campaign.id)
        rates = observed_rates(session, campaign)
    assert rates is not None
    assert (rates.clicked, rates.replied) == (0.25, 0.0)
    assert rates.source == "this campaign so far, 20 decided"


def test_cli_simulate_prints_each_branch_with_its_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nurture.cli.main import app

    monkeypatch.setenv("NURTURE_DATABASE__URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    result = runner.invoke(app, ["campaigns", "simulate", "spasm-relief", "--click-rate", "25"])
    assert result.exit_code == 0, result.output
    assert "Branches (shares of the contacts reaching each):" in result.output
    assert "after first-visit, within 2d: clicked 25% -> questions-text" in result.output
    assert "otherwise 75% -> reminder-text" in result.output
    default = runner.invoke(app, ["campaigns", "simulate", "spasm-relief"])
    assert "clicked 10% -> questions-text (0 contacts); otherwise 90%" in default.output
    assert "(shares assumed)" in default.output
    assert "(shares as given)" in result.output
    wrong = runner.invoke(app, ["campaigns", "simulate", "spasm-relief", "--click-rate", "150"])
    assert wrong.exit_code != 0  # main() prints it as one line (nurture.cli.main)
    assert str(wrong.exception) == "--click-rate is a percentage from 0 to 100, not 150"
