"""The campaign page's funnel counts people over people enrolled, and shows unsubscribes made
from the campaign's messages on it (messages are labelled as messages, with no percentage)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from campaigns import lifecycle
from campaigns.definitions import load_sequence
from contacts.consent import record_consent
from contacts.optout import opt_out
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import ConsentStatus, Contact


def test_the_page_shows_people_and_credited_unsubscribes(
    editor: TestClient, staff_accounts: NurtureApp
) -> None:
    app = staff_accounts
    ids = []
    with transaction(app.sessions) as session:
        for n in range(3):
            contact = Contact(
                first_name="Pat",
                last_name=f"Tester{n}",
                email=f"funnel{n}@example.com",
                timezone="America/Los_Angeles",
            )
            session.add(contact)
            session.flush()
            contact.add_tags(["demo"])
            record_consent(
                session,
                contact.id,
                "email",
                ConsentStatus.OPTED_IN,
                source="test",
                evidence="form",
                occurred_at=app.clock(),
            )
            ids.append(contact.id)
    with transaction(app.sessions) as session:
        lifecycle.launch(session, load_sequence("demo"), now=app.clock(), settings=app.settings)
    app.planner.tick()
    assert app.dispatcher.tick().sent == 3
    with transaction(app.sessions) as session:  # two people unsubscribe (a link, a page)
        for contact_id in ids[:2]:
            contact = session.get_one(Contact, contact_id)
            opt_out(session, contact, "email", source="one-click", at=app.clock())

    page = editor.get("/admin/campaigns/demo?fresh=1").text
    assert 'id="people-unsubscribed">2<' in page
    assert 'id="people-enrolled">3<' in page and 'id="people-sent">3<' in page
    assert "100%" in page and "167%" not in page
