"""Issue 20 end to end in Chromium: an editor writes a new three-step sequence (English and
Spanish) from scratch, watches the segment count, meets the STOP error, sends themselves a test,
saves and asks for review; an owner, in a second browser, approves and launches it; the planner
and dispatcher (the app's frozen clock) send it; an edit after launch is version 2, which the
owner moves the running campaign to, seeing whom it touches: the step already planned keeps
version 1's words, the step planned after uses version 2's. Then `nurture content export`,
`import` into a fresh database and export again give the same bytes, and no file in the
repository changed for any of it. Review is required (editors may not launch unreviewed)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from campaigns import CAMPAIGNS_DIR, content_folder
from core.settings import REPO_ROOT
from nurture.app import NurtureApp
from providers.memory import MemoryChannel
from staff import accounts
from storage.db import make_engine, session_factory, transaction, upgrade
from storage.models import Campaign, Contact, ContentVersion, LaunchReview, Message
from templates import TEMPLATES_DIR
from tests.admin.test_browser import ARGS, CHROMIUM, PASSWORD, _shot, _sign_in, server
from tests.admin.test_editor_browser import STOP_ERROR, _email

__all__ = ["server"]  # a fixture, used by name

pytestmark = pytest.mark.browser

NAME = "back-care"
OWNER, EDITOR = "owner@clinic.test", "editor@clinic.test"
OLD_TEXT = (
    "{{ clinic_name }}: Hi {{ first_name }}, book {{ booking_link }} or call {{ clinic_phone }}. "
    "Reply STOP to opt out."
)
NEW_TEXT = (
    "{{ clinic_name }}: {{ first_name }}, a time for you: {{ booking_link }} or call "
    "{{ clinic_phone }}. Reply STOP to opt out."
)
NEW_SUBJECT = "Your invitation, second edition"


@pytest.fixture(autouse=True)
def reviews_required(clean_environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped default: an owner approves what an editor wrote before it goes out."""
    monkeypatch.setenv("NURTURE_REVIEW__EDITORS_MAY_LAUNCH", "false")


@pytest.fixture
def browser(server: str) -> Any:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _page(browser: Any, server: str) -> Any:
    """A browser context of its own (its own cookies: one person signed in)."""
    context = browser.new_context(base_url=server, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.on("dialog", lambda dialog: dialog.accept())
    return page


def _content_files() -> dict[str, str]:
    """Every definition and template file in the repository, by path: sha256 of its bytes."""
    found = sorted(CAMPAIGNS_DIR.glob("*.toml")) + sorted(
        path
        for path in TEMPLATES_DIR.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".py"
    )
    return {
        str(path.relative_to(REPO_ROOT)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in found
    }


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _write_the_sequence(page: Any, channel: MemoryChannel) -> None:
    """The editor writes back-care from scratch: three steps (email, text, email), EN and ES."""
    _sign_in(page, EDITOR)
    page.goto("/admin/sequences/new")
    page.locator("#seq-name").fill(NAME)
    page.locator("#seq-title").fill("Back care")
    page.locator("#seq-reason").fill("you asked us about back care")
    page.locator("#seq-reason-es").fill("usted nos pidió información sobre su espalda")
    _email(page, 0, "en", "A note from us", "Hi {{ first_name }},\n\nGentle care for your back.")
    _email(page, 0, "es", "Una nota", "Hola {{ first_name }}:\n\nCuidado amable.")
    _email(page, 2, "en", "Your invitation", "Hi {{ first_name }},\n\nCome and see us.")
    _email(page, 2, "es", "Su invitación", "Hola {{ first_name }}:\n\nVenga a vernos.")

    text = page.locator("#step-1-en-text")
    counter = page.locator(".step").nth(1).locator("fieldset[data-language=en] .sms-counter")
    text.fill("{{ clinic_name }}: Hi {{ first_name }}, call {{ clinic_phone }}.")
    page.get_by_text(re.compile(r"GSM-7 · 1 segment \(limit 2\)")).first.wait_for()
    page.locator("#problems li", has_text=STOP_ERROR).wait_for()  # no STOP wording: the error
    text.press_sequentially(" We are here for you," * 8, delay=0)
    page.get_by_text(re.compile(r"2 segments \(limit 2\)")).first.wait_for()
    assert "2 segments" in counter.inner_text()  # the count changed as they typed
    text.fill(OLD_TEXT)
    page.locator("#step-1-es-text").fill(
        "{{ clinic_name }}: Hola {{ first_name }}, reserve {{ booking_link }} o llame al "
        "{{ clinic_phone }}. "
        "Responda STOP para dejar de recibir mensajes."
    )
    page.locator("#problems li", has_text=STOP_ERROR).wait_for(state="detached")
    page.locator("#check-status", has_text="No problems").wait_for()

    page.locator("#preview-step").select_option("0")
    page.get_by_role("button", name="Mobile").click()
    page.locator("#preview-about", has_text="Shown for a sample contact").wait_for()
    page.get_by_role("button", name="Send me a test").click()
    page.locator("#test-status", has_text="Test sent to").wait_for()
    assert (channel.emails[-1].to, channel.emails[-1].subject) == (EDITOR, "[TEST] A note from us")
    channel.emails.clear()

    page.get_by_role("button", name="Save").click()
    page.locator("#save-status", has_text="Saved as version 1").wait_for()
    page.get_by_role("link", name="request review").click()  # the campaign's page, not a 404
    page.wait_for_url(f"**/admin/campaigns/{NAME}")
    assert "Launch waits: back-care has not been approved" in page.content()
    page.get_by_label("Note for the owner").fill("new sequence for back care")
    page.get_by_role("button", name="Request review").click()
    page.wait_for_url("**done=review-requested")
    assert page.get_by_role("button", name="Launch").count() == 0  # an editor waits
    _shot(page, "journey-01-review-requested")


def _run(app: NurtureApp, **advance: float) -> None:
    app.clock.advance(**advance)  # type: ignore[attr-defined]  # the tests' FrozenClock
    app.planner.tick()
    app.dispatcher.tick()
    app.planner.tick()  # the next step, once this one is sent


def test_write_review_launch_upgrade_and_round_trip(
    server: str, browser: Any, sqlite_app: NurtureApp, channel: MemoryChannel, tmp_path: Path
) -> None:
    before = _content_files()
    app = sqlite_app
    with transaction(app.sessions) as session:
        accounts.add_user(session, OWNER, PASSWORD, "owner")
        ana = session.scalar(select(Contact).where(Contact.first_name == "Ana"))
        assert ana is not None
        ana.language = "es"
    editor, owner = _page(browser, server), _page(browser, server)
    _write_the_sequence(editor, channel)

    # the owner approves version 1 and launches it
    _sign_in(owner, OWNER)
    owner.goto(f"/admin/campaigns/{NAME}")
    assert "new sequence for back care" in owner.content()
    owner.get_by_role("button", name="Approve version 1").click()
    owner.wait_for_url("**done=approved")
    assert "Launch: approved by owner@clinic.test" in owner.content()
    owner.get_by_role("button", name="Launch").click()
    owner.wait_for_url("**done=launched")
    assert owner.locator("#campaign-state").inner_text() == "active"
    with app.sessions() as session:
        (record,) = session.scalars(select(LaunchReview).where(LaunchReview.sequence == NAME))
        assert (record.decision, record.decided_by, record.version) == ("approved", OWNER, 1)
        assert (record.requested_by, record.comment) == (EDITOR, "new sequence for back care")

    _run(app)  # step 1 sent to all three; step 2 (the text) planned from version 1
    subjects = sorted(email.subject for email in channel.emails)
    assert subjects == ["A note from us", "A note from us", "Una nota"]

    # the editor edits after launch: version 2, which they may not put live themselves
    editor.goto(f"/admin/sequences/{NAME}/edit")
    editor.locator("#step-1-en-text").fill(NEW_TEXT)
    editor.locator("#step-2-en-subject").fill(NEW_SUBJECT)
    editor.locator("#check-status", has_text="No problems").wait_for()
    editor.get_by_role("button", name="Save").click()
    editor.locator("#save-status", has_text="Saved as version 2").wait_for()
    editor.goto(f"/admin/campaigns/{NAME}")
    assert "Moving waits: back-care changed since it was approved" in editor.content()
    assert editor.get_by_role("button", name="Move to version 2").count() == 0

    # the owner sees what moving does, and moves
    owner.goto(f"/admin/campaigns/{NAME}")
    summary = owner.locator("#upgrade-summary").inner_text()
    assert "Version 1 → 2" in summary and "steps already planned keep version 1" in summary
    assert "changed 02-reminder.sms.plain, 03-invitation.email.md" in summary
    assert owner.locator("#upgrade-touched").inner_text() == "3"
    _shot(owner, "journey-02-upgrade")
    owner.get_by_role("button", name="Move to version 2").click()
    owner.wait_for_url("**done=upgraded")
    assert owner.locator("#upgrade").count() == 0  # it runs the newest version now

    _run(app, days=2, hours=1)  # step 2: planned before the move, so version 1's words
    bodies = [sms.body for sms in channel.texts]
    assert len(bodies) == 3 and not any("a time for you" in body for body in bodies)
    assert sum(", book " in body for body in bodies) == 2  # the English ones, as version 1 says
    _run(app, days=3, hours=1)  # step 3: planned after the move, so version 2's subject
    last = sorted(email.subject for email in channel.emails[3:])
    assert last == ["Su invitación", NEW_SUBJECT, NEW_SUBJECT]
    with app.sessions() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.name == NAME))
        assert campaign is not None
        numbers = dict(
            session.execute(
                select(Message.step_index, ContentVersion.number)
                .join(ContentVersion, ContentVersion.id == Message.content_version_id)
                .where(Message.campaign_id == campaign.id)
                .distinct()
            ).all()
        )
        assert numbers == {0: 1, 1: 1, 2: 2}
        # version 2 was approved by the owner's move: the record names whom and which
        latest = session.scalars(
            select(LaunchReview).where(LaunchReview.sequence == NAME).order_by(LaunchReview.id)
        ).all()[-1]
        assert (latest.decided_by, latest.version) == (OWNER, 2)

    # export, import into a fresh database, export again: the same bytes, every version
    first, second = tmp_path / "export-1", tmp_path / "export-2"
    with app.sessions() as session:
        assert content_folder.export_to(session, first) == []
    fresh_url = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgrade(fresh_url)
    engine = make_engine(fresh_url)
    try:
        fresh = session_factory(engine)
        with transaction(fresh) as session:
            report = content_folder.import_from(session, first, now=app.clock())
            assert f"{NAME} v1" in report.added and f"{NAME} v2" in report.added
        with fresh() as session:
            content_folder.export_to(session, second)
    finally:
        engine.dispose()
    exported = _folder_bytes(first)
    assert f"versions/{NAME}/v2/templates/03-invitation.email.md" in exported
    assert exported == _folder_bytes(second)

    assert _content_files() == before  # none of this changed a file in the repository
    assert not (CAMPAIGNS_DIR / f"{NAME}.toml").exists() and not (TEMPLATES_DIR / NAME).exists()
