"""The dashboard in a real browser: Playwright driving Debian's chromium (never a downloaded
browser) against a real uvicorn server on a loopback port, on SQLite. Screenshots of the main
pages go to tests/artifacts/admin/ for people to look at."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from contacts.consent import record_consent
from core.settings import REPO_ROOT
from nurture.app import NurtureApp
from staff import accounts
from storage.db import transaction
from storage.models import Campaign, CampaignState, Contact
from web.app import create_app

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = REPO_ROOT / "tests" / "artifacts" / "admin"
PASSWORD = "correct horse battery staple"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(sqlite_app: NurtureApp) -> Iterator[str]:
    """uvicorn in a thread, serving the same NurtureApp (frozen clock, memory channel)."""
    with transaction(sqlite_app.sessions) as session:
        accounts.add_user(session, "editor@clinic.test", PASSWORD, "editor")
        accounts.add_user(session, "viewer@clinic.test", PASSWORD, "viewer")
        for n, name in enumerate(("Maria", "Ana", "Luis"), start=1):
            contact = Contact(
                first_name=name,
                last_name="Lopez",
                email=f"{name.lower()}@example.com",
                phone=f"+1310555010{n}",
                timezone="America/Los_Angeles",
            )
            session.add(contact)
            session.flush()
            contact.add_tags(["demo"])
            record_consent(
                session,
                contact.id,
                "email",
                "opted_in",
                source="t",
                evidence="form",
                occurred_at=sqlite_app.clock(),
            )
            record_consent(
                session,
                contact.id,
                "sms",
                "opted_in",
                source="t",
                evidence="form",
                occurred_at=sqlite_app.clock(),
            )
    port = _free_port()
    config = uvicorn.Config(
        create_app(sqlite_app), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    web = uvicorn.Server(config)
    thread = threading.Thread(target=web.run, daemon=True)
    thread.start()
    for _ in range(200):
        if web.started:
            break
        time.sleep(0.025)
    assert web.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    web.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser_page(server: str) -> Iterator:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        context = browser.new_context(base_url=server, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.on("dialog", lambda dialog: dialog.accept())
        try:
            yield page
        finally:
            context.close()
            browser.close()


def _sign_in(page, email: str) -> None:
    page.goto("/admin/campaigns")
    assert "/admin/login" in page.url  # anonymous visitors are sent to the login page
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/admin/campaigns")


def _shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_editor_launches_watches_the_funnel_and_pauses(
    browser_page, sqlite_app: NurtureApp
) -> None:
    page = browser_page
    page.goto("/admin/campaigns")
    _shot(page, "01-login")
    page.get_by_label("Email").fill("editor@clinic.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/admin/campaigns")
    page.get_by_role("link", name="Relief from back spasms (demo").click()
    assert page.locator("#audience-size").inner_text() == "3"
    page.get_by_role("button", name="Launch").click()
    page.wait_for_url("**done=launched")
    assert page.locator("#campaign-state").inner_text() == "active"
    assert page.locator("#total-sent").inner_text() == "0"

    sqlite_app.planner.tick()
    assert sqlite_app.dispatcher.tick().sent == 3
    page.reload()
    assert page.locator("#total-sent").inner_text() == "3"
    assert "3 (100%)" in page.locator("svg.funnel").inner_html()
    _shot(page, "03-campaign-after-dispatch")

    page.get_by_role("button", name="Pause").click()
    page.wait_for_url("**done=paused")
    assert page.locator("#campaign-state").inner_text() == "paused"
    with sqlite_app.sessions() as session:
        assert session.query(Campaign).one().state == CampaignState.PAUSED

    page.get_by_role("link", name="Full projection").click()
    assert "would be sent" in page.content()
    _shot(page, "08-projection")
    page.set_viewport_size({"width": 768, "height": 1024})  # a tablet held upright
    page.goto("/admin/campaigns/demo")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    _shot(page, "09-campaign-tablet")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Campaigns").click()
    _shot(page, "02-campaigns")
    page.goto("/admin/campaigns/demo/preview")
    frame = page.frame_locator("iframe.email-frame").first
    assert "Maria" in frame.locator("body").inner_text()
    assert page.locator(".sms-encoding").first.inner_text() in ("GSM-7", "UCS-2")
    _shot(page, "04-preview")
    page.goto("/admin/contacts")
    page.get_by_label("Name, email or phone").fill("(310) 555-0101")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Maria Lopez").click()
    assert page.locator("#email-consent").inner_text() == "opted_in"
    _shot(page, "05-contact")


def test_a_form_posted_without_its_csrf_token_is_refused(
    browser_page, sqlite_app: NurtureApp
) -> None:
    page = browser_page
    _sign_in(page, "editor@clinic.test")
    page.goto("/admin/campaigns/demo")
    page.locator("form[action$='/launch'] input[name=csrf_token]").evaluate("el => el.remove()")
    page.get_by_role("button", name="Launch").click()
    page.wait_for_load_state()
    assert "did not come from this site" in page.content()
    _shot(page, "06-csrf-refused")
    with sqlite_app.sessions() as session:
        assert session.query(Campaign).count() == 0


def test_a_viewer_cannot_change_anything(browser_page, sqlite_app: NurtureApp) -> None:
    page = browser_page
    _sign_in(page, "viewer@clinic.test")
    page.goto("/admin/campaigns/demo")
    assert page.get_by_role("button", name="Launch").count() == 0
    assert "can view this campaign but not change it" in page.content()
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    response = page.request.post(
        "/admin/campaigns/demo/launch", form={"csrf_token": token or "", "starts_at": ""}
    )
    assert response.status == 403
    page.goto("/admin/contacts/1")
    assert page.get_by_role("button", name="Suppress").count() == 0
    with sqlite_app.sessions() as session:
        assert session.query(Campaign).count() == 0


def test_import_upload_progress_and_rejects(browser_page, tmp_path: Path) -> None:
    page = browser_page
    _sign_in(page, "editor@clinic.test")
    upload = tmp_path / "fair.csv"
    upload.write_text(
        "first_name,last_name,email,tags,email_consent\n"
        "Rosa,Diaz,rosa@example.com,demo,yes\nBad,Row,nope,demo,yes\n"
    )
    page.goto("/admin/imports")
    page.get_by_label("CSV file", exact=True).set_input_files(str(upload))
    page.get_by_label("Where these contacts came from").fill("health fair")
    page.get_by_role("button", name="Import").click()
    page.wait_for_url("**/admin/imports/*")
    page.locator("#rejects-link:not([hidden])").wait_for()
    assert page.locator("#import-status").inner_text() == "finished"
    _shot(page, "07-import")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the rejected rows").click()
    assert "nope" in Path(download.value.path()).read_text()


def test_the_header_says_not_running_within_a_minute_of_the_last_worker_stopping(
    browser_page, sqlite_app: NurtureApp
) -> None:
    """A worker killed without a word stops beating; a minute later (by the app's clock) every
    page's header says so, with when it was last seen."""
    from scheduler.heartbeat import Heartbeat

    page = browser_page
    stale = sqlite_app.settings.scheduler.worker_stale_seconds
    assert stale < 60  # "within a minute"
    Heartbeat(
        sqlite_app.sessions, sqlite_app.clock, worker="w-1", channels=["email"], stale_seconds=stale
    ).beat()
    _sign_in(page, "viewer@clinic.test")
    assert page.locator("#scheduler-status").inner_text() == "scheduler running"
    sqlite_app.clock.advance(seconds=stale + 1)  # killed: no beat since
    page.reload()
    status = page.locator("#scheduler-status")
    assert status.inner_text().startswith("scheduler not running since")
    assert "error-text" in (status.get_attribute("class") or "")
    _shot(page, "10-scheduler-not-running")
