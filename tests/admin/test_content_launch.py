"""A launch from the dashboard pins the stored current version, so what staff edited in the
database (not the repository's files) is what goes out."""

from __future__ import annotations

from fastapi.testclient import TestClient

from campaigns import content_store, lifecycle
from contacts.consent import record_consent
from nurture.app import NurtureApp
from providers.memory import MemoryChannel
from storage.db import transaction
from storage.models import Contact


def test_the_dashboard_launches_the_stored_version(
    editor: TestClient, staff_accounts: NurtureApp, channel: MemoryChannel
) -> None:
    app = staff_accounts
    with transaction(app.sessions) as session:
        contact = Contact(
            first_name="Ana", last_name="T", email="ana@example.com", timezone="America/Los_Angeles"
        )
        session.add(contact)
        session.flush()
        contact.add_tags(["demo"])
        record_consent(
            session, contact.id, "email", "opted_in", source="t", evidence="form",
            occurred_at=app.clock(),
        )  # fmt: skip
        seeded = content_store.current_version(session, "demo")
        files = content_store.files_of(session, seeded)
        files["01-welcome.subject.txt"] = "Edited in the dashboard, {{ contact.first_name }}\n"
        edited, _ = content_store.save_version(
            session, "demo", definition_text=seeded.definition_text, templates=files,
            author="ana@clinic.test", now=app.clock(),
        )  # fmt: skip
        edited_id = edited.id
    page = editor.get("/admin/campaigns/demo").text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = editor.post(
        "/admin/campaigns/demo/launch", data={"csrf_token": token, "starts_at": ""}
    )
    assert response.status_code == 303, response.text
    app.planner.tick()
    app.dispatcher.tick()
    assert [email.subject for email in channel.emails] == ["Edited in the dashboard, Ana"]
    with transaction(app.sessions) as session:
        assert lifecycle.get_campaign(session, "demo").content_version_id == edited_id
