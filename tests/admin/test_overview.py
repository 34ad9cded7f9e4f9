"""The dashboard's home: running campaigns with the last 7 days' sends, clicks and bookings, the
messages waiting, and what needs attention, on a small seeded database."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from campaigns.definitions import load_sequence
from campaigns.overview import overview
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import (
    Campaign,
    CampaignState,
    Contact,
    Enrollment,
    Event,
    LaunchReview,
    Message,
    MessageState,
)

DAY = timedelta(days=1)


def _campaign(session, name: str, state: str, now: datetime) -> Campaign:  # type: ignore[no-untyped-def]
    definition = load_sequence("demo").snapshot() | {"name": name, "title": f"Title of {name}"}
    campaign = Campaign(
        name=name, definition=definition, state=state, launched_at=now - 9 * DAY, starts_at=now
    )
    session.add(campaign)
    session.flush()
    return campaign


@pytest.fixture
def seeded(staff_accounts: NurtureApp) -> NurtureApp:
    """Campaign `demo` (active): 3 sends this week and 1 eight days ago, 2 clicks and 1 booking
    this week and 1 click before, 2 planned and 1 claimed; `old-run` cancelled; one uncertain
    message; one review waiting."""
    now = staff_accounts.clock()
    with transaction(staff_accounts.sessions) as session:
        running = _campaign(session, "demo", CampaignState.ACTIVE, now)
        cancelled = _campaign(session, "old-run", CampaignState.CANCELLED, now)
        contact = Contact(email="pat@example.com", timezone="America/Los_Angeles")
        session.add(contact)
        session.flush()
        enrollments = {}
        for campaign in (running, cancelled):
            enrollments[campaign.id] = Enrollment(
                campaign_id=campaign.id, contact_id=contact.id, enrolled_at=now - 9 * DAY
            )
            session.add(enrollments[campaign.id])
        session.flush()

        def message(campaign: Campaign, step: int, state: str, sent: datetime | None) -> Message:
            row = Message(
                enrollment_id=enrollments[campaign.id].id,
                campaign_id=campaign.id,
                contact_id=contact.id,
                step_index=step,
                channel="email",
                state=state,
                due_at=sent or now + DAY,
                sent_at=sent,
            )
            session.add(row)
            return row

        for step, ago in enumerate([DAY, 2 * DAY, 6 * DAY, 8 * DAY]):
            message(running, step, MessageState.SENT, now - ago)
        message(running, 4, MessageState.PLANNED, None)
        message(running, 5, MessageState.PLANNED, None)
        message(running, 6, MessageState.CLAIMED, None)
        message(running, 7, MessageState.UNCERTAIN, None).error = "timeout"
        message(cancelled, 0, MessageState.SENT, now - DAY)
        for kind, ago in [("clicked", DAY), ("clicked", 3 * DAY), ("clicked", 8 * DAY)]:
            session.add(Event(kind=kind, campaign_id=running.id, occurred_at=now - ago))
        session.add(Event(kind="booked", campaign_id=running.id, occurred_at=now - 2 * DAY))
        session.add(Event(kind="clicked", campaign_id=cancelled.id, occurred_at=now - DAY))
        session.add(
            LaunchReview(
                sequence="spasm-relief",
                fingerprint="a" * 64,
                requested_by="editor@clinic.test",
                requested_at=now,
                decision="pending",
                comment="",
            )
        )
    return staff_accounts


def test_the_figures_are_the_last_seven_days_of_running_campaigns(seeded: NurtureApp) -> None:
    now = seeded.clock()
    with seeded.sessions() as session:
        figures = overview(session, now=now)
    assert figures.since == now - 7 * DAY
    (demo,) = figures.campaigns
    assert (demo.name, demo.title, demo.state) == ("demo", "Title of demo", "active")
    assert (demo.sent, demo.clicked, demo.booked) == (3, 2, 1)
    assert (demo.planned, demo.claimed) == (2, 1)


def test_the_home_page_shows_campaigns_waiting_messages_and_problems(
    editor: TestClient, seeded: NurtureApp
) -> None:
    page = editor.get("/admin/")
    assert page.status_code == 200 and 'aria-current="page">Overview' in page.text
    text = page.text
    assert '<a href="/admin/campaigns/demo">Title of demo</a>' in text
    assert "old-run" not in text  # cancelled: not running
    assert "in the last 7 days" in text
    row = text.split('<a href="/admin/campaigns/demo">', 1)[1].split("</tr>", 1)[0]
    cells = [cell.split("</td>")[0] for cell in row.split('<td class="num">')[1:]]
    assert cells == ["3", "2", "1", "2", "1"]
    assert '<a href="/admin/attention">1 message with an unknown outcome</a>' in text
    assert "p***@example.com" in text and "pat@example.com" not in text
    assert '<a href="/admin/campaigns/spasm-relief#review">spasm-relief</a>' in text


def test_the_home_page_with_nothing_running(editor: TestClient) -> None:
    page = editor.get("/admin/")
    assert "No campaign is running." in page.text and "Nothing needs attention." in page.text


def test_the_home_page_needs_a_login(client: TestClient) -> None:
    response = client.get("/admin/")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/admin/login?next=/admin/")
