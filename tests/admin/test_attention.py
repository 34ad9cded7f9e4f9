"""Uncertain messages: listed for everyone, settled only by editors, through scheduler.attention."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from campaigns import lifecycle
from campaigns.definitions import load_sequence
from contacts.consent import record_consent
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import Contact, Event, Message, MessageState


def _token(client: TestClient, path: str) -> str:
    return client.get(path).text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


@pytest.fixture
def uncertain(staff_accounts: NurtureApp) -> int:
    """One welcome email left 'uncertain', as recovery leaves a send cut short by a crash."""
    app = staff_accounts
    with transaction(app.sessions) as session:
        contact = Contact(first_name="Maria", email="maria@example.com", timezone="UTC")
        session.add(contact)
        session.flush()
        contact.add_tags(["demo"])
        record_consent(
            session,
            contact.id,
            "email",
            "opted_in",
            source="t",
            evidence="f",
            occurred_at=app.clock(),
        )
        lifecycle.launch(session, load_sequence("demo"), now=app.clock(), settings=app.settings)
    app.planner.tick()
    with transaction(app.sessions) as session:
        message = session.query(Message).one()
        message.state, message.error = MessageState.UNCERTAIN, "worker stopped mid-send"
        return message.id


def test_everyone_sees_them_masked(viewer: TestClient, uncertain: int) -> None:
    page = viewer.get("/admin/attention").text
    assert "worker stopped mid-send" in page and "m***@example.com" in page
    assert "maria@example.com" not in page and "Editors settle these." in page


@pytest.mark.parametrize(
    ("how", "state"),
    [("sent", MessageState.SENT), ("resend", MessageState.PLANNED), ("skip", MessageState.SKIPPED)],
)
def test_an_editor_settles_one(
    editor: TestClient, staff_accounts: NurtureApp, uncertain: int, how: str, state: str
) -> None:
    response = editor.post(
        f"/admin/attention/{uncertain}",
        data={"csrf_token": _token(editor, "/admin/attention"), "how": how},
    )
    assert response.status_code == 303
    with staff_accounts.sessions() as session:
        message = session.get_one(Message, uncertain)
        assert message.state == state and "by staff #1" in (message.error or "")
    assert "Nothing needs attention" in editor.get("/admin/attention").text
    again = editor.post(
        f"/admin/attention/{uncertain}",
        data={"csrf_token": _token(editor, "/admin/attention"), "how": how},
    )
    assert again.status_code == 400 and "not uncertain" in again.text


def test_a_viewer_cannot_settle(
    viewer: TestClient, staff_accounts: NurtureApp, uncertain: int
) -> None:
    response = viewer.post(
        f"/admin/attention/{uncertain}",
        data={"csrf_token": _token(viewer, "/admin/attention"), "how": "resend"},
    )
    assert response.status_code == 403
    with staff_accounts.sessions() as session:
        assert session.get_one(Message, uncertain).state == MessageState.UNCERTAIN


def test_automatic_decisions_are_listed_and_only_what_they_left_is_to_do(
    viewer: TestClient, staff_accounts: NurtureApp, uncertain: int
) -> None:
    """An email is staff's without the Event Webhook; once the evidence settles it, it leaves
    the to-do list and shows under "Settled automatically" with its evidence and rule."""
    from providers.memory import MemoryChannel
    from scheduler.settle import Settler

    page = viewer.get("/admin/attention").text
    assert "No message has been settled automatically yet." in page
    assert "worker stopped mid-send" in page  # to do: no webhook, so no automatic check
    app = staff_accounts
    with transaction(app.sessions) as session:
        message = session.get_one(Message, uncertain)
        message.claimed_at = app.clock()
        session.add(
            Event(kind="opened", message_id=uncertain, provider="sendgrid", provider_event_id="e1")
        )
    [decision] = Settler(app.settings, app.sessions, MemoryChannel(), app.clock).tick()
    page = viewer.get("/admin/attention").text
    assert "Nothing needs attention" in page and 'id="settled"' in page
    settled = page.split('id="settled"', 1)[1]
    assert "SendGrid event opened e1" in settled and decision.rule in settled
    assert "m***@example.com" in settled and "maria@example.com" not in page
