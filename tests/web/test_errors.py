"""Everywhere: size limits, friendly 404s, no stack trace to a client, masked logs."""

from __future__ import annotations

import logging

from fastapi.testclient import TestClient

from contacts.suppressions import is_suppressed
from storage.db import transaction
from storage.models import Contact
from web.app import create_app


def test_unknown_pages_are_friendly(client):
    page = client.get("/no/such/page", headers={"Accept": "text/html"})
    assert page.status_code == 404 and "not valid" in page.text
    assert page.headers["content-type"].startswith("text/html")
    api = client.get("/no/such/thing", headers={"Accept": "application/json"})
    assert api.status_code == 404 and api.json() == {"error": "Not Found"}


def test_bodies_over_the_limit_are_refused(client):
    too_big = b"x" * (client.app.state.nurture.settings.web.max_body_bytes + 1)
    response = client.post("/webhooks/sendgrid/events", content=too_big)
    assert response.status_code == 413


def test_a_crash_shows_no_stack_trace(nurture_app, make_contact, send, signing, monkeypatch):
    message = send(make_contact())
    api = create_app(nurture_app)

    def explode(*_args, **_kwargs):
        raise RuntimeError("secret internals /work/main/web/links.py line 42")

    monkeypatch.setattr(api.state.links, "_message", explode)
    client = TestClient(api, raise_server_exceptions=False)
    response = client.get(
        signing.path_of(nurture_app.signer.click_url(message, "booking")),
        headers={"Accept": "text/html"},
    )
    assert response.status_code == 500
    assert "secret internals" not in response.text and "Traceback" not in response.text
    assert "Something went wrong" in response.text


def test_webhook_logs_mask_addresses(nurture_app, make_contact, client, signing, caplog):
    make_contact(phone="+13105550166", sms=True)
    api = create_app(nurture_app)  # installs the redacting filter on the handlers present now
    client = TestClient(api, raise_server_exceptions=False)
    with caplog.at_level(logging.INFO):
        params = {"MessageSid": "SM1", "From": "+13105550166", "To": "+13105550100", "Body": "STOP"}
        assert signing.twilio_post(client, "/webhooks/twilio/inbound", params).status_code == 200
        logging.getLogger("nurture.test").info("raw address %s", "+13105550166")
    assert "+13105550166" not in caplog.text
    assert "+1******0166" in caplog.text


def test_access_log_never_carries_tokens(nurture_app, make_contact, client, signing, caplog):
    contact = make_contact()
    path = signing.path_of(nurture_app.signer.unsubscribe_url(contact, "email"))
    with caplog.at_level(logging.INFO, logger="nurture.web.access"):
        client.get(path)
    token = path.rsplit("/", 1)[1]
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("nurture"))
    assert "path=/u/" in ours and token not in ours  # (the test client logs its own URLs)


def test_clicks_and_one_clicks_pass_through_the_middleware(
    nurture_app, make_contact, send, client, signing, caplog
):
    """/l/ and /u/ are plain routes: access-logged (without their tokens), security headers on,
    and bodies over the limit refused before anything is written."""
    contact = make_contact()
    click = signing.path_of(nurture_app.signer.click_url(send(contact), "booking"))
    unsubscribe = signing.path_of(nurture_app.signer.unsubscribe_url(contact, "email"))
    with caplog.at_level(logging.INFO, logger="nurture.web.access"):
        redirect = client.get(click)
        done = client.post(unsubscribe, content=b"List-Unsubscribe=One-Click")
    assert redirect.status_code == 302 and done.status_code == 200
    for response in (redirect, done):
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
    lines = [r.getMessage() for r in caplog.records if r.name == "nurture.web.access"]
    assert any("method=GET path=/l/… status=302" in line for line in lines)
    assert any("method=POST path=/u/… status=200" in line for line in lines)
    assert not any(click.rsplit("/", 1)[1] in line for line in lines)

    other = make_contact()
    path = signing.path_of(nurture_app.signer.unsubscribe_url(other, "email"))
    limit = nurture_app.settings.web.max_body_bytes
    too_big = b"List-Unsubscribe=One-Click" + b"&x=" + b"x" * limit
    assert client.post(path, content=too_big).status_code == 413
    with client.stream("POST", path, content=iter([too_big[:limit], too_big[limit:]])) as streamed:
        assert streamed.status_code == 413  # no content-length: counted as it streams
    with transaction(nurture_app.sessions) as session:
        address = session.get_one(Contact, other).email
        assert not is_suppressed(session, "email", address)
