"""The dashboard's header says whether a worker is alive (scheduler/heartbeat.py), by the app's
clock: "scheduler running" while heartbeats are fresh, "not running since ..." once the last is
older than [scheduler] worker_stale_seconds; and a launched campaign's page says when messages
wait with no worker to send them."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from contacts.consent import record_consent
from core.clock import FrozenClock
from nurture.app import NurtureApp
from scheduler.heartbeat import Heartbeat
from storage.db import transaction
from storage.models import Contact

HEADER = re.compile(r'<p id="scheduler-status"[^>]*>([^<]*)')


def _header(client: TestClient, path: str = "/admin/campaigns") -> str:
    page = client.get(path)
    assert page.status_code == 200
    found = HEADER.search(page.text)
    assert found, page.text
    return found.group(1)


def _worker(app: NurtureApp, clock: FrozenClock) -> Heartbeat:
    stale = app.settings.scheduler.worker_stale_seconds
    return Heartbeat(
        app.sessions, clock, worker="w-1", channels=["email", "sms"], stale_seconds=stale
    )


def test_fresh_heartbeat_is_running_and_a_stale_one_is_not_running_since_its_tick(
    editor: TestClient, staff_accounts: NurtureApp, frozen_clock: FrozenClock
) -> None:
    assert staff_accounts.settings.scheduler.worker_stale_seconds == 45
    _worker(staff_accounts, frozen_clock).beat()  # Tue 01 Dec 2026 10:00 in Los Angeles
    assert _header(editor) == "scheduler running"

    frozen_clock.advance(seconds=40)
    assert _header(editor) == "scheduler running"
    frozen_clock.advance(seconds=6)  # the last beat is 46 s old (and the cached read 6 s)
    assert _header(editor) == "scheduler not running since Tue 01 Dec 2026 10:00"


def test_no_worker_ever_says_how_to_start_one(editor: TestClient) -> None:
    assert _header(editor).startswith("scheduler not running: no worker has started")


def test_the_status_is_read_at_most_every_few_seconds(
    editor: TestClient, staff_accounts: NurtureApp, frozen_clock: FrozenClock
) -> None:
    assert _header(editor).startswith("scheduler not running")
    _worker(staff_accounts, frozen_clock).beat()
    assert _header(editor).startswith("scheduler not running")  # the same read, cached
    frozen_clock.advance(seconds=5)
    assert _header(editor) == "scheduler running"


def test_the_sign_in_page_does_not_say(client: TestClient) -> None:
    page = client.get("/admin/login")
    assert page.status_code == 200 and "scheduler-status" not in page.text


@pytest.fixture
def one_contact(staff_accounts: NurtureApp) -> int:
    with transaction(staff_accounts.sessions) as session:
        contact = Contact(
            first_name="Maria", last_name="Tester", email="maria@example.com", timezone="UTC"
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
            occurred_at=staff_accounts.clock(),
        )
        return contact.id


def _launch(editor: TestClient) -> None:
    page = editor.get("/admin/campaigns/demo").text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = editor.post("/admin/campaigns/demo/launch", data={"csrf_token": token})
    assert response.status_code == 303


def test_the_campaign_page_says_messages_wait_for_a_worker_that_is_not_running(
    editor: TestClient, staff_accounts: NurtureApp, frozen_clock: FrozenClock, one_contact: int
) -> None:
    _launch(editor)
    enrolled = editor.get("/admin/campaigns/demo").text
    assert 'id="no-worker"' in enrolled and "1 contact still in this sequence" in enrolled

    staff_accounts.planner.tick()  # a worker planned, then stopped; its message is now due
    _worker(staff_accounts, frozen_clock).stopped()
    frozen_clock.advance(seconds=6)
    due = editor.get("/admin/campaigns/demo").text
    assert "1 message due now (the oldest since Tue 01 Dec 2026 10:00)" in due

    _worker(staff_accounts, frozen_clock).beat()
    frozen_clock.advance(seconds=6)
    assert 'id="no-worker"' not in editor.get("/admin/campaigns/demo").text
