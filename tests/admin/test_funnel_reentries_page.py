"""The campaign page of a sequence people may enter again: enrolled in people, entries apart."""

from __future__ import annotations

from fastapi.testclient import TestClient

from campaigns import lifecycle
from campaigns.booking import record_booking_event
from campaigns.definitions import load_sequence
from campaigns.triggers import BookingEvent
from contacts.consent import record_consent
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import ConsentStatus, Contact


def test_a_person_who_entered_twice_is_one_person_with_two_entries(
    editor: TestClient, staff_accounts: NurtureApp
) -> None:
    app = staff_accounts
    with transaction(app.sessions) as session:
        lifecycle.launch(
            session, load_sequence("pre-visit"), now=app.clock(), settings=app.settings
        )
        contact = Contact(first_name="Ana", email="again@example.com", timezone="America/Chicago")
        session.add(contact)
        session.flush()
        record_consent(session, contact.id, "email", ConsentStatus.OPTED_IN, source="test",
                       evidence="form", occurred_at=app.clock())  # fmt: skip
        events: list[tuple[BookingEvent, str]] = [
            ("booked", "B-1"), ("cancelled", "B-1"), ("booked", "B-2"),
        ]  # fmt: skip
        for kind, reference in events:
            record_booking_event(
                session, contact, kind, at=app.clock(), source="test", reference=reference
            )
    page = editor.get("/admin/campaigns/pre-visit?fresh=1").text
    assert 'id="people-enrolled">1<' in page
    assert "1 person" in page and 'id="entries">(2 entries' in page
    assert "200%" not in page
