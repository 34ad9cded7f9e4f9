"""GET /l/{token}: a click is recorded and redirected only to registered destinations."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from itsdangerous import TimestampSigner
from sqlalchemy import func, select

from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import Event
from web.app import create_app

REGISTERED = ("https://spinaldecompressionla.com/",)


def _clicks(app: NurtureApp) -> list[Event]:
    with transaction(app.sessions) as session:
        return list(session.scalars(select(Event).where(Event.kind == "clicked")))


def test_click_redirects_with_utm_and_records(nurture_app, make_contact, send, client, signing):
    contact = make_contact()
    message = send(contact)
    url = nurture_app.signer.click_url(message, "booking")
    response = client.get(signing.path_of(url), headers={"User-Agent": "Mail/1.0"})
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        "https://spinaldecompressionla.com/book"
    )
    query = parse_qs(location.query)
    assert query["utm_medium"] == ["email"] and query["utm_campaign"] == ["web-test"]
    assert query["utm_content"] == ["welcome"] and query["utm_source"] == ["nurture"]
    assert response.headers["cache-control"] == "no-store"
    [click] = _clicks(nurture_app)
    assert (click.message_id, click.contact_id, click.step_index) == (message, contact, 0)
    assert click.user_agent == "Mail/1.0" and click.data == {"destination": "booking"}
    assert click.occurred_at == nurture_app.clock()


def test_bad_tokens_get_the_friendly_page_and_no_click(
    nurture_app, make_contact, send, client, signing
):
    message = send(make_contact())
    good = signing.path_of(nurture_app.signer.click_url(message, "booking"))
    unknown_message = signing.path_of(nurture_app.signer.click_url(message + 999, "booking"))
    unknown_destination = signing.path_of(nurture_app.signer.click_url(message, "evil"))
    other_key = TimestampSigner("another-secret-key-0123456789", salt="nurture.click")
    forged = "/l/" + other_key.sign(f"{message}~booking").decode()
    for path in (good[:-2] + "xx", unknown_message, unknown_destination, forged, "/l/", "/l/a/b"):
        response = client.get(path, headers={"Accept": "text/html"})
        assert response.status_code == 404, path
        assert "location" not in response.headers
        assert "not valid" in response.text
    assert _clicks(nurture_app) == []


def test_expired_token_is_refused(nurture_app, make_contact, send, client, monkeypatch):
    message = send(make_contact())
    ttl = nurture_app.signer.max_age
    old = TimestampSigner
    monkeypatch.setattr(
        old, "get_timestamp", lambda self: int(__import__("time").time()) - ttl - 60
    )
    url = nurture_app.signer.click_url(message, "booking")
    monkeypatch.undo()
    assert client.get(url.split("8000", 1)[1]).status_code == 404
    assert _clicks(nurture_app) == []


def test_token_from_another_purpose_is_refused(nurture_app, make_contact, send, client, signing):
    contact = make_contact()
    send(contact)
    unsubscribe = signing.path_of(nurture_app.signer.unsubscribe_url(contact, "email"))
    response = client.get("/l/" + unsubscribe.rsplit("/", 1)[1])
    assert response.status_code == 404


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    token=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/?#%"),
        max_size=80,
    )
)
def test_no_token_redirects_anywhere_unregistered(sqlite_app, token):
    client = TestClient(create_app(sqlite_app), follow_redirects=False)
    response = client.get(f"/l/{token}")
    assert response.status_code in (302, 404)
    if response.status_code == 302:
        assert response.headers["location"].startswith(REGISTERED)


def test_clicks_are_group_committed_and_drained_on_shutdown(
    nurture_app, make_contact, send, signing
):
    message = send(make_contact())
    path = signing.path_of(nurture_app.signer.click_url(message, "booking"))
    api = create_app(nurture_app)
    with TestClient(api, follow_redirects=False) as client:
        assert api.state.links.recorder.running
        for _ in range(50):
            assert client.get(path).status_code == 302
    assert not api.state.links.recorder.running
    with transaction(nurture_app.sessions) as session:
        assert session.scalar(select(func.count()).where(Event.kind == "clicked")) == 50


def test_clicks_in_one_turn_share_one_lookup_and_each_gets_its_own_answer(
    nurture_app, make_contact, send, signing
):
    from sqlalchemy import event as sa_event

    first, second = send(make_contact()), send(make_contact(), step_index=1)
    links = create_app(nurture_app).state.links
    tokens = [
        nurture_app.signer.click_url(message, "booking").rsplit("/", 1)[1]
        for message in (first, second, second, first + second + 99)
    ]
    lookups = []
    sa_event.listen(
        nurture_app.engine,
        "before_cursor_execute",
        lambda _c, _cur, statement, *_: (
            lookups.append(statement) if "FROM messages" in statement else None
        ),
    )

    async def together() -> list[str | None]:
        return list(await asyncio.gather(*(links.follow(t, "Mail/1.0") for t in tokens)))

    first_to, second_to, again, unknown = asyncio.run(together())
    assert len(lookups) == 1
    assert "utm_medium=email" in first_to and "utm_content=welcome" in first_to
    assert "utm_medium=sms" in second_to and again == second_to and unknown is None
    assert [(c.message_id, c.channel) for c in _clicks(nurture_app)] == [
        (first, "email"),
        (second, "sms"),
        (second, "sms"),
    ]
