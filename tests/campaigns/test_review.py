"""Review before launch (campaigns.review): who may approve, what an approval lets through, and
that a change after approval, or a failing validation, still refuses the launch."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from campaigns import review
from campaigns.definitions import Sequence, load_sequence
from core.clock import FrozenClock
from core.errors import ValidationFailed
from nurture.app import NurtureApp
from nurture.cli.main import app as cli
from providers.memory import MemoryChannel
from staff import accounts
from storage.db import transaction
from storage.models import Campaign, LaunchReview
from templates import TEMPLATES_DIR
from tests.conftest import build_app

OWNER = review.Reviewer("owner@clinic.test", "owner")
EDITOR = review.Reviewer("editor@clinic.test", "editor")
VIEWER = review.Reviewer("viewer@clinic.test", "viewer")
PASSWORD = "a long enough passphrase"


@pytest.fixture
def strict_app(
    sqlite_url: str, tmp_path: Path, frozen_clock: FrozenClock, channel: MemoryChannel
) -> Iterator[NurtureApp]:
    """Editors may not launch without approval (the shipped default)."""
    app = build_app(
        sqlite_url, tmp_path, frozen_clock, channel, review={"editors_may_launch": False}
    )
    yield app
    app.dispose()


def _launch(app: NurtureApp, sequence: Sequence, by: review.Reviewer) -> Campaign:
    with transaction(app.sessions) as session:
        campaign, _ = review.launch(session, sequence, by, now=app.clock(), settings=app.settings)
        return campaign


def _campaigns(app: NurtureApp) -> int:
    with app.sessions() as session:
        return session.scalar(select(func.count()).select_from(Campaign)) or 0


def test_the_fingerprint_covers_the_definition_and_every_template_file(tmp_path: Path) -> None:
    root = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR / "spasm-relief", root / "spasm-relief")
    sequence = load_sequence("demo")
    before = review.content_fingerprint(sequence, root)
    assert before == review.content_fingerprint(sequence, root) and len(before) == 64
    retitled = sequence.model_copy(update={"title": "Another title"})
    assert review.content_fingerprint(retitled, root) != before
    spanish = root / "spasm-relief" / "es" / "02-cycle.sms.txt"
    spanish.write_text(spanish.read_text(encoding="utf-8") + " ", encoding="utf-8")
    assert review.content_fingerprint(sequence, root) != before


def test_an_editor_asks_and_cannot_approve_a_viewer_cannot_ask(strict_app: NurtureApp) -> None:
    sequence = load_sequence("demo")
    now = strict_app.clock()
    with transaction(strict_app.sessions) as session:
        asked = review.request_review(session, sequence, EDITOR, now=now, note="new subject")
        again = review.request_review(session, sequence, EDITOR, now=now)
        assert again.id == asked.id and asked.decision == review.PENDING
        with pytest.raises(review.ReviewRefused, match="only an owner can approve"):
            review.approve(session, sequence, EDITOR, now=now)
        with pytest.raises(review.ReviewRefused, match="only editors and owners"):
            review.request_review(session, sequence, VIEWER, now=now)


def test_a_launch_without_approval_is_refused_with_one_line(strict_app: NurtureApp) -> None:
    with pytest.raises(review.ReviewRefused) as refused:
        _launch(strict_app, load_sequence("demo"), EDITOR)
    assert str(refused.value) == (
        "cannot launch: demo has not been approved: request a review, and an owner approves it"
    )
    assert _campaigns(strict_app) == 0


def test_after_approval_an_editor_launches_and_the_record_names_approver_and_version(
    strict_app: NurtureApp,
) -> None:
    sequence = load_sequence("demo")
    now = strict_app.clock()
    with transaction(strict_app.sessions) as session:
        review.request_review(session, sequence, EDITOR, now=now)
        with pytest.raises(review.ReviewRefused, match="waiting for an owner's review"):
            review.launch(session, sequence, EDITOR, now=now, settings=strict_app.settings)
        review.approve(session, sequence, OWNER, now=now, comment="reads well")
    campaign = _launch(strict_app, sequence, EDITOR)
    assert campaign.state == "active"
    with strict_app.sessions() as session:
        (record,) = review.reviews(session, "demo")
    assert (record.requested_by, record.decided_by) == (EDITOR.email, OWNER.email)
    assert record.decision == review.APPROVED and record.comment == "reads well"
    assert record.fingerprint == review.content_fingerprint(sequence)
    assert record.decided_at == now


def test_a_change_after_approval_refuses_the_launch(strict_app: NurtureApp) -> None:
    sequence = load_sequence("demo")
    with transaction(strict_app.sessions) as session:
        review.approve(session, sequence, OWNER, now=strict_app.clock())
    changed = sequence.model_copy(update={"title": "A new title nobody approved"})
    with pytest.raises(review.ReviewRefused, match="demo changed since it was approved by owner@"):
        _launch(strict_app, changed, EDITOR)
    assert _campaigns(strict_app) == 0


def test_an_owner_approving_unseen_content_is_refused(strict_app: NurtureApp) -> None:
    sequence = load_sequence("demo")
    with transaction(strict_app.sessions) as session:
        with pytest.raises(review.ReviewRefused, match="changed since you opened it"):
            review.approve(session, sequence, OWNER, now=strict_app.clock(), seen="0" * 64)


def test_sent_back_says_why_and_needs_a_comment(strict_app: NurtureApp) -> None:
    sequence = load_sequence("demo")
    now = strict_app.clock()
    with transaction(strict_app.sessions) as session:
        with pytest.raises(Exception, match="say what should change"):
            review.send_back(session, sequence, OWNER, now=now, comment="  ")
        review.send_back(session, sequence, OWNER, now=now, comment="softer subject line")
    with pytest.raises(review.ReviewRefused, match=r"sent back by owner@clinic\.test: softer"):
        _launch(strict_app, sequence, EDITOR)


def test_an_owner_launches_in_one_go_and_the_approval_is_recorded(strict_app: NurtureApp) -> None:
    sequence = load_sequence("demo")
    _launch(strict_app, sequence, OWNER)
    with strict_app.sessions() as session:
        (record,) = review.reviews(session, "demo")
    assert record.decision == review.APPROVED and record.decided_by == OWNER.email
    assert record.fingerprint == review.content_fingerprint(sequence)


def test_the_setting_lets_an_editor_launch_unreviewed(nurture_app: NurtureApp) -> None:
    assert nurture_app.settings.review.editors_may_launch  # tests/conftest.py's default
    _launch(nurture_app, load_sequence("demo"), EDITOR)
    with nurture_app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(LaunchReview)) == 0
    with pytest.raises(review.ReviewRefused, match="can view campaigns but not launch"):
        _launch(nurture_app, load_sequence("spasm-relief"), VIEWER)


def test_validation_failures_refuse_even_an_approved_launch(strict_app: NurtureApp) -> None:
    data = load_sequence("demo").snapshot()
    data["steps"][1]["window"] = {"start": "07:00", "end": "22:00"}  # outside TCPA hours
    broken = Sequence.model_validate(data)
    with transaction(strict_app.sessions) as session:
        review.approve(session, broken, OWNER, now=strict_app.clock())
    with pytest.raises(ValidationFailed, match="TCPA"):
        _launch(strict_app, broken, EDITOR)
    with pytest.raises(ValidationFailed):  # unapproved: the validation problems come first
        _launch(strict_app, broken.model_copy(update={"title": "x" * 5}), EDITOR)
    with pytest.raises(ValidationFailed):  # an owner's launch, and no approval recorded
        _launch(strict_app, broken.model_copy(update={"title": "y" * 5}), OWNER)
    assert _campaigns(strict_app) == 0
    with strict_app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(LaunchReview)) == 1


# -- the CLI: --as names the staff account that acts ---------------------------------------------
@pytest.fixture
def run(strict_app: NurtureApp, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NURTURE_DATABASE__URL", strict_app.settings.database.url)
    monkeypatch.setenv("NURTURE_REVIEW__EDITORS_MAY_LAUNCH", "false")
    with transaction(strict_app.sessions) as session:
        accounts.add_user(session, OWNER.email, PASSWORD, "owner")
        accounts.add_user(session, EDITOR.email, PASSWORD, "editor")

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        """The exit code nurture.cli.main gives (a NurtureError's own), and what was said."""
        result = CliRunner().invoke(cli, list(args))
        error = result.exception
        code = getattr(error, "exit_code", 1) if error else result.exit_code
        return code, result.output + (str(error) if error else "")

    return invoke


def test_cli_review_approve_and_launch(run, strict_app: NurtureApp) -> None:  # type: ignore[no-untyped-def]
    code, said = run("campaigns", "launch", "demo")
    assert code == 77 and "demo has not been approved" in said
    code, said = run("campaigns", "review", "demo", "--as", EDITOR.email)
    assert code == 0 and "requested by editor@clinic.test" in said
    code, said = run("campaigns", "approve", "demo", "--as", EDITOR.email)
    assert code == 77 and "only an owner can approve" in said
    code, said = run("campaigns", "approve", "demo", "--as", "nobody@clinic.test")
    assert code != 0 and "no staff account" in said
    code, said = run("campaigns", "approve", "demo", "--as", OWNER.email, "--comment", "ok")
    assert code == 0 and "Approved demo" in said
    code, said = run("campaigns", "reviews", "demo")
    assert code == 0 and "(current)" in said and "approved" in said
    code, said = run("campaigns", "launch", "demo")
    assert code == 0 and "Launched demo" in said, said
    with strict_app.sessions() as session:
        (record,) = review.reviews(session, "demo")
        assert record.decided_by == OWNER.email and record.requested_by == EDITOR.email


def test_cli_owner_launch_records_the_owner(run, strict_app: NurtureApp) -> None:  # type: ignore[no-untyped-def]
    code, said = run("campaigns", "launch", "demo", "--as", OWNER.email)
    assert code == 0, said
    with strict_app.sessions() as session:
        (record,) = review.reviews(session, "demo")
        assert record.decided_by == OWNER.email and record.comment == "approved at launch"


def test_cli_upgrade_follows_the_launch_rule(run, strict_app: NurtureApp) -> None:  # type: ignore[no-untyped-def]
    from campaigns import content_store

    code, said = run("campaigns", "launch", "demo", "--as", OWNER.email)
    assert code == 0, said
    with transaction(strict_app.sessions) as session:
        seeded = content_store.current_version(session, "demo")
        files = {**content_store.files_of(session, seeded), "01-welcome.subject.txt": "Two\n"}
        content_store.save_version(
            session, "demo", definition_text=seeded.definition_text, templates=files,
            author=EDITOR.email, now=strict_app.clock(),
        )  # fmt: skip
    code, said = run("campaigns", "upgrade", "demo", "--yes")
    assert code == 77 and "cannot move to version 2: demo changed since it was approved" in said
    code, said = run("campaigns", "upgrade", "demo", "--yes", "--as", OWNER.email)
    assert code == 0 and "runs version 2" in said, said
    with strict_app.sessions() as session:
        latest = review.latest_review(session, "demo")
    assert latest is not None and (latest.decided_by, latest.version) == (OWNER.email, 2)
