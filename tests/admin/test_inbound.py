"""Inbound texts to read: listed for everyone (sender masked), marked as a revocation only by
an editor with the session's CSRF token, through contacts.inbound; marking twice is harmless."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from contacts.consent import record_consent
from contacts.suppressions import active_suppression, is_suppressed
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import ConsentEvent, Contact, Event
from web.webhooks.twilio import handle_inbound

PHONE = "+13105550123"
ROSA = "+13105550124"


def _token(client: TestClient, path: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert match
    return match.group(1)


def _text(app: NurtureApp, body: str, sid: str, sender: str = PHONE) -> str | None:
    return handle_inbound(app, {"MessageSid": sid, "From": sender, "Body": body})


def _event_id(app: NurtureApp, sid: str) -> int:
    with app.sessions() as session:
        found = session.scalar(
            select(Event.id).where(Event.provider_event_id == f"twilio:{sid}:received")
        )
        assert found
        return found


def _count(app: NurtureApp, kind: str) -> int:
    with app.sessions() as session:
        return session.scalar(select(func.count()).where(Event.kind == kind)) or 0


@pytest.fixture
def texts(staff_accounts: NurtureApp) -> NurtureApp:
    """Maria and Rosa (contacts, opted in to texts) send five texts over five minutes, a
    stranger one. Rosa's plainly asks to stop."""
    app = staff_accounts
    with transaction(app.sessions) as session:
        for name, phone in (("Maria", PHONE), ("Rosa", ROSA)):
            contact = Contact(first_name=name, phone=phone, timezone="UTC")
            session.add(contact)
            session.flush()
            record_consent(
                session,
                contact.id,
                "sms",
                "opted_in",
                source="t",
                evidence="form",
                occurred_at=app.clock(),
            )
    for sid, body, sender in [
        ("SM1", "HELP", PHONE),
        ("SM2", "stop by tomorrow? call me at 310-555-0199", PHONE),
        ("SM3", "START", PHONE),
        ("SM4", "No puedo ir mañana", PHONE),
        ("SM5", "Please stop texting me", ROSA),
    ]:
        app.clock.advance(minutes=1)
        _text(app, body, sid, sender)
    app.clock.advance(minutes=1)
    _text(app, "not now", "SM6", sender="+13105550999")
    return app


def test_everyone_reads_unclear_texts_newest_first_sender_masked(
    viewer: TestClient, texts: NurtureApp
) -> None:
    page = viewer.get("/admin/inbound")
    assert page.status_code == 200
    html = page.text
    order = [html.index(t) for t in ("not now", "Please stop texting me", "No puedo ir", "stop by")]
    assert order == sorted(order)  # newest first
    assert ">HELP<" not in html and ">START<" not in html  # clear keywords are not listed
    assert html.count('<td lang="es">') == 1 and html.count('<td lang="en">') == 3
    assert "+1******0123" in html and "+1******0124" in html and "+1******0999" in html
    assert PHONE not in html and "310-555-0199" not in html  # a number inside a text is masked
    assert "texts stopped on arrival" in html
    assert "Nothing: the number is not a contact." in html
    assert "Editors mark revocations." in html and "Mark as a revocation</button>" not in html
    assert 'href="/admin/inbound" aria-current="page"' in html  # in the navigation


def test_the_dashboard_links_to_it(viewer: TestClient, texts: NurtureApp) -> None:
    assert 'href="/admin/inbound"' in viewer.get("/admin/campaigns").text


def test_an_editor_marks_an_unclear_text_and_twice_is_harmless(
    editor: TestClient, texts: NurtureApp
) -> None:
    app = texts
    unclear = _event_id(app, "SM4")
    assert "Mark as a revocation</button>" in editor.get("/admin/inbound").text
    first = editor.post(
        f"/admin/inbound/{unclear}/revocation",
        data={"csrf_token": _token(editor, "/admin/inbound")},
    )
    assert first.status_code == 303 and first.headers["location"] == "/admin/inbound?done=marked"
    with transaction(app.sessions) as session:
        maria = session.scalars(select(Contact).where(Contact.phone == PHONE)).one()
        assert maria.sms_consent == "opted_out"
        suppression = active_suppression(session, "sms", PHONE)
        assert suppression is not None and suppression.reason == "stop"  # lifted only by START
        [mark] = session.scalars(select(Event).where(Event.kind == "inbound_marked"))
        assert mark.data == {"inbound_event": unclear, "by": "editor@clinic.test (staff #1)"}
        assert mark.occurred_at == app.clock()
        ledger = session.scalar(select(func.count()).where(ConsentEvent.status == "opted_out"))
    page = editor.get(first.headers["location"]).text
    assert "Marked as a revocation by editor@clinic.test (staff #1)" in page
    assert "no more texts go to that number" in page

    again = editor.post(
        f"/admin/inbound/{unclear}/revocation",
        data={"csrf_token": _token(editor, "/admin/inbound")},
    )
    assert again.status_code == 303 and again.headers["location"] == "/admin/inbound?done=already"
    assert _count(app, "inbound_marked") == 1
    with transaction(app.sessions) as session:
        assert (
            session.scalar(select(func.count()).where(ConsentEvent.status == "opted_out")) == ledger
        )

    # The phone itself can still come back.
    app.clock.advance(minutes=1)
    _text(app, "START", "SM9")
    with transaction(app.sessions) as session:
        assert not is_suppressed(session, "sms", PHONE)


def test_a_viewer_cannot_mark(viewer: TestClient, texts: NurtureApp) -> None:
    unclear = _event_id(texts, "SM4")
    response = viewer.post(
        f"/admin/inbound/{unclear}/revocation",
        data={"csrf_token": _token(viewer, "/admin/inbound")},
    )
    assert response.status_code == 403
    assert _count(texts, "inbound_marked") == 0
    with transaction(texts.sessions) as session:
        assert not is_suppressed(session, "sms", PHONE)


def test_a_mark_without_the_csrf_token_is_refused(editor: TestClient, texts: NurtureApp) -> None:
    unclear = _event_id(texts, "SM4")
    for data in ({}, {"csrf_token": "forged"}):
        assert editor.post(f"/admin/inbound/{unclear}/revocation", data=data).status_code == 403
    assert _count(texts, "inbound_marked") == 0


@pytest.mark.parametrize(
    ("sid", "status", "says"),
    [
        ("SM1", 400, "was a clear keyword"),  # HELP
        ("SM6", 400, "no contact for"),  # a stranger's number: only its mask is kept
        ("SM5", 303, "done=already"),  # a revocation acted on when it arrived
    ],
)
def test_what_cannot_or_need_not_be_marked(
    editor: TestClient, texts: NurtureApp, sid: str, status: int, says: str
) -> None:
    response = editor.post(
        f"/admin/inbound/{_event_id(texts, sid)}/revocation",
        data={"csrf_token": _token(editor, "/admin/inbound")},
    )
    assert response.status_code == status
    assert says in (response.text if status == 400 else response.headers["location"])
    assert _count(texts, "inbound_marked") == 0


def test_an_unknown_text_is_a_clear_error(editor: TestClient, texts: NurtureApp) -> None:
    token = _token(editor, "/admin/inbound")
    missing = editor.post("/admin/inbound/999999/revocation", data={"csrf_token": token})
    assert missing.status_code == 400 and "no inbound text 999999" in missing.text
    assert editor.post("/admin/inbound/0/revocation", data={"csrf_token": token}).status_code == 422


def test_an_empty_list_says_so(viewer: TestClient) -> None:
    assert "No inbound texts to read" in viewer.get("/admin/inbound").text


def test_anonymous_visitors_are_sent_to_sign_in(client: TestClient, texts: NurtureApp) -> None:
    page = client.get("/admin/inbound")
    assert page.status_code == 303 and page.headers["location"].startswith("/admin/login")
    posted = client.post(
        f"/admin/inbound/{_event_id(texts, 'SM4')}/revocation", data={"csrf_token": "x"}
    )
    assert posted.status_code == 303 and posted.headers["location"].startswith("/admin/login")
    assert _count(texts, "inbound_marked") == 0
