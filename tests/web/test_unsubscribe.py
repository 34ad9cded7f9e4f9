"""Unsubscribe and preferences: GET confirms only; POST and RFC 8058 one-click are durable."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from contacts.optout import opt_out
from contacts.suppressions import is_suppressed
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import Channel, ConsentEvent, Contact, Event, Suppression
from web.app import create_app
from web.unsubscribe_writer import Unsubscribe, UnsubscribeWriter


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


def test_sqlite_unsubscribe_commits_survive_a_power_cut(sqlite_app):
    """The writer's own SQLite connection fsyncs every commit (synchronous=FULL); the click
    writer's, whose rows nobody waits for, does not (NORMAL)."""
    api = create_app(sqlite_app)
    unsubscribes = api.state.unsubscribes.writer_sql
    unsubscribes([Unsubscribe(1, Channel.EMAIL, "one-click")])  # no such contact: no rows
    with unsubscribes._writer.transaction() as raw:
        assert raw.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert raw.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    with api.state.links._writer.transaction() as raw:
        assert raw.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    unsubscribes.close()
    api.state.links.close()


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


def test_bulk_writer_matches_opt_out(nurture_app, make_contact):
    """The group-commit path writes what contacts.optout.opt_out writes, row for row."""
    by_orm, by_batch = make_contact(), make_contact()
    now = nurture_app.clock()
    with transaction(nurture_app.sessions) as session:
        opt_out(session, session.get_one(Contact, by_orm), "email", source="one-click", at=now)
    writer = UnsubscribeWriter(nurture_app.engine)
    writer([Unsubscribe(by_batch, Channel.EMAIL, "one-click", now)] * 2)  # twice in one batch

    def rows(contact_id: int) -> tuple:
        with transaction(nurture_app.sessions) as session:
            contact = session.get_one(Contact, contact_id)
            suppression = session.scalar(
                select(Suppression).where(Suppression.address == contact.email)
            )
            consents = session.scalars(
                select(ConsentEvent).where(
                    ConsentEvent.contact_id == contact_id, ConsentEvent.status == "opted_out"
                )
            ).all()
            events = session.scalars(select(Event).where(Event.contact_id == contact_id)).all()
            return (
                contact.email_consent,
                (
                    suppression.reason,
                    suppression.source,
                    suppression.created_at,
                    suppression.lifted_at,
                ),
                [(c.status, c.source, c.evidence, c.occurred_at) for c in consents],
                [(e.kind, e.channel, e.data, e.occurred_at) for e in events],
            )

    assert rows(by_orm) == rows(by_batch)
    before = rows(by_batch)
    writer([Unsubscribe(by_batch, Channel.EMAIL, "one-click", now)])  # a repeat click later
    after = rows(by_batch)
    assert after[:3] == before[:3] and len(after[3]) == 2  # one more event, nothing else


def test_bulk_writer_reactivates_a_lifted_suppression(nurture_app, make_contact, client, signing):
    contact = make_contact()
    preferences = signing.path_of(nurture_app.signer.preferences_url(contact))
    unsubscribe = signing.path_of(nurture_app.signer.unsubscribe_url(contact, "email"))
    client.post(unsubscribe, content=b"List-Unsubscribe=One-Click")
    client.post(preferences, data={"email": "yes"})  # the person re-subscribes explicitly
    assert not _suppressed(nurture_app, contact, "email")
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
    client.post(path, data={"sms": "yes", "email": "yes"})
    assert not _suppressed(nurture_app, contact, "email")
    with transaction(nurture_app.sessions) as session:
        assert session.get_one(Contact, contact).email_consent == "opted_in"


def test_unknown_preferences_token(client):
    assert client.get("/p/nonsense", headers={"Accept": "text/html"}).status_code == 404
    assert client.post("/p/nonsense", data={"email": "yes"}).status_code == 404
