"""Unsubscribe and preferences: GET confirms only; POST and RFC 8058 one-click are durable."""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient
from sqlalchemy import event, select

from contacts.optout import OptOut
from contacts.suppressions import is_suppressed
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import Channel, Contact, Suppression
from web.app import create_app


def _suppressed(app: NurtureApp, contact_id: int, channel: str) -> bool:
    with transaction(app.sessions) as session:
        contact = session.get_one(Contact, contact_id)
        return is_suppressed(session, channel, contact.address(channel))


def test_get_only_confirms(nurture_app, make_contact, client, signing):
    contact = make_contact()
    path = signing.path_of(nurture_app.signer.unsubscribe_url(contact, "email"))
    response = client.get(path)
    assert response.status_code == 200 and '<form method="post">' in response.text
    assert response.headers["x-frame-options"] == "DENY"
    assert not _suppressed(nurture_app, contact, "email")


def test_button_post_unsubscribes_and_shows_page(nurture_app, make_contact, client, signing):
    contact = make_contact()
    path = signing.path_of(nurture_app.signer.unsubscribe_url(contact, "email"))
    response = client.post(path)
    assert response.status_code == 200 and "You are unsubscribed" in response.text
    assert _suppressed(nurture_app, contact, "email")
    with transaction(nurture_app.sessions) as session:
        assert session.get_one(Contact, contact).email_consent == "opted_out"


def test_one_click_is_durable_before_the_response(nurture_app, make_contact, signing):
    contact = make_contact(phone="+13105550111", sms=True)
    path = signing.path_of(nurture_app.signer.unsubscribe_url(contact, "sms"))
    api = create_app(nurture_app)
    with TestClient(api, follow_redirects=False) as client:
        assert api.state.unsubscribes.writer.running
        response = client.post(
            path,
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 200 and response.text == "Unsubscribed.\n"
        assert "set-cookie" not in response.headers and "location" not in response.headers
        # Still inside the lifespan: the writer thread has committed before the 200.
        assert _suppressed(nurture_app, contact, "sms")
        assert not _suppressed(nurture_app, contact, "email")


def test_one_click_is_answered_only_after_its_commit(nurture_app, make_contact, signing):
    """The 200 waits for the writer thread's commit: held back, the request does not finish."""
    contact = make_contact()
    path = signing.path_of(nurture_app.signer.unsubscribe_url(contact, "email"))
    api = create_app(nurture_app)
    writer = api.state.unsubscribes.writer
    held, release = threading.Event(), threading.Event()
    write = writer.write

    def slow_write(batch):
        held.set()
        release.wait(10)
        write(batch)

    writer.write = slow_write
    answers: list[int] = []
    with TestClient(api) as client:
        request = threading.Thread(
            target=lambda: answers.append(
                client.post(path, content=b"List-Unsubscribe=One-Click").status_code
            )
        )
        request.start()
        assert held.wait(10)
        request.join(0.3)
        assert request.is_alive() and answers == []  # no answer while the commit is held
        assert not _suppressed(nurture_app, contact, "email")
        release.set()
        request.join(10)
    assert answers == [200] and _suppressed(nurture_app, contact, "email")


def test_sqlite_unsubscribe_commits_survive_a_power_cut(sqlite_app):
    """The unsubscribe writer's transactions run with synchronous=FULL (an fsync at commit);
    the connection goes back to NORMAL for everyone else's."""
    with transaction(sqlite_app.sessions) as session:
        contact = Contact(email="pat@example.com", timezone="UTC")
        session.add(contact)
    api = create_app(sqlite_app)
    seen: list[int] = []

    @event.listens_for(sqlite_app.engine, "commit")
    def level(connection):
        seen.append(connection.exec_driver_sql("PRAGMA synchronous").scalar())

    now = sqlite_app.clock()
    api.state.unsubscribes.write([OptOut(contact.id, Channel.EMAIL, "one-click", now)])
    with transaction(sqlite_app.sessions) as session:
        assert is_suppressed(session, "email", "pat@example.com")
    assert seen == [2, 1]  # FULL, then NORMAL


def test_one_click_multipart(nurture_app, make_contact, client, signing):
    contact = make_contact()
    path = signing.path_of(nurture_app.signer.unsubscribe_url(contact, "email"))
    response = client.post(path, files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200 and response.text == "Unsubscribed.\n"
    assert _suppressed(nurture_app, contact, "email")


def test_bad_token_changes_nothing(nurture_app, make_contact, client, signing):
    contact = make_contact()
    path = signing.path_of(nurture_app.signer.unsubscribe_url(contact, "email"))
    preferences = signing.path_of(nurture_app.signer.preferences_url(contact))
    for bad in (path[:-3] + "abc", "/u/" + preferences.rsplit("/", 1)[1], "/u/" + "x" * 500):
        response = client.post(bad, content=b"List-Unsubscribe=One-Click")
        assert response.status_code == 404
    with transaction(nurture_app.sessions) as session:
        assert session.scalars(select(Suppression)).all() == []


def test_one_click_reactivates_a_lifted_suppression(nurture_app, make_contact, client, signing):
    contact = make_contact()
    preferences = signing.path_of(nurture_app.signer.preferences_url(contact))
    unsubscribe = signing.path_of(nurture_app.signer.unsubscribe_url(contact, "email"))
    client.post(unsubscribe, content=b"List-Unsubscribe=One-Click")
    nurture_app.clock.advance(minutes=1)
    client.post(preferences, data={"email": "yes"})  # the person re-subscribes explicitly
    assert not _suppressed(nurture_app, contact, "email")
    nurture_app.clock.advance(minutes=1)
    client.post(unsubscribe, content=b"List-Unsubscribe=One-Click")
    assert _suppressed(nurture_app, contact, "email")


def test_preferences_choose_channels(nurture_app, make_contact, client, signing):
    contact = make_contact(phone="+13105550112", sms=True)
    path = signing.path_of(nurture_app.signer.preferences_url(contact))
    page = client.get(path)
    assert page.status_code == 200 and "p***@example.com" in page.text
    assert "+1******0112" in page.text and '@example.com"' not in page.text
    saved = client.post(path, data={"sms": "yes"})  # email unchecked
    assert saved.status_code == 200 and "Saved" in saved.text
    assert _suppressed(nurture_app, contact, "email")
    assert not _suppressed(nurture_app, contact, "sms")
    nurture_app.clock.advance(minutes=1)
    client.post(path, data={"sms": "yes", "email": "yes"})
    assert not _suppressed(nurture_app, contact, "email")
    with transaction(nurture_app.sessions) as session:
        assert session.get_one(Contact, contact).email_consent == "opted_in"


def test_unknown_preferences_token(client):
    assert client.get("/p/nonsense", headers={"Accept": "text/html"}).status_code == 404
    assert client.post("/p/nonsense", data={"email": "yes"}).status_code == 404
