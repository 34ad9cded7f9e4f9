"""POST /webhooks/booking (HMAC-SHA256, timestamped) and `nurture contacts booked`."""

from __future__ import annotations

import json

from sqlalchemy import select
from typer.testing import CliRunner

from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import Contact, Enrollment, Event
from web.webhooks.booking import sign


def _post(client, signing, payload: dict, *, at: int, secret: str | None = None, header=None):
    body = json.dumps(payload).encode()
    signature = header if header is not None else sign(secret or signing.booking_secret, body, at)
    headers = {"Content-Type": "application/json"}
    if signature:
        headers["X-Nurture-Signature"] = signature
    return client.post("/webhooks/booking", content=body, headers=headers)


def _state(app: NurtureApp, contact_id: int):
    with transaction(app.sessions) as session:
        contact = session.get_one(Contact, contact_id)
        enrollments = session.execute(
            select(Enrollment.state, Enrollment.exit_reason).where(
                Enrollment.contact_id == contact_id
            )
        )
        booked = session.scalars(
            select(Event).where(Event.contact_id == contact_id, Event.kind == "booked")
        ).all()
        return contact.booked_at, list(enrollments), len(booked)


def test_signed_booking_marks_booked_and_exits(nurture_app, make_contact, send, client, signing):
    contact = make_contact(email="maria@example.com")
    send(contact)
    now = signing.unix(nurture_app.clock())
    payload = {"booking_id": "B-1", "email": "Maria@Example.com"}
    response = _post(client, signing, payload, at=now)
    assert response.status_code == 200 and response.json() == {"status": "booked"}
    booked_at, enrollments, events = _state(nurture_app, contact)
    assert booked_at == nurture_app.clock() and events == 1
    assert [tuple(row) for row in enrollments] == [("exited", "booked")]
    # The same notice again inside the window: recorded once.
    again = _post(client, signing, payload, at=now + 10)
    assert again.json() == {"status": "duplicate"}
    assert _state(nurture_app, contact)[2] == 1


def test_booking_by_phone_and_unknown_contacts(nurture_app, make_contact, client, signing):
    contact = make_contact(phone="+13105550144", sms=True)
    now = signing.unix(nurture_app.clock())
    by_phone = _post(client, signing, {"booking_id": "B-2", "phone": "(310) 555-0144"}, at=now)
    assert by_phone.json() == {"status": "booked"}
    assert _state(nurture_app, contact)[0] is not None
    nobody = _post(client, signing, {"booking_id": "B-3", "email": "who@example.com"}, at=now)
    assert nobody.json() == {"status": "unknown_contact"}


def test_forged_stale_and_unsigned_bookings_change_nothing(
    nurture_app, make_contact, send, client, signing
):
    contact = make_contact(email="maria@example.com")
    send(contact)
    now = signing.unix(nurture_app.clock())
    payload = {"booking_id": "B-9", "email": "maria@example.com"}
    body = json.dumps(payload).encode()
    good = sign(signing.booking_secret, body, now)
    responses = [
        _post(client, signing, payload, at=now, secret="wrong-secret"),
        _post(client, signing, payload, at=now - 301),  # stale: a captured request replayed
        _post(client, signing, payload, at=now + 301),
        _post(client, signing, payload, at=now, header=""),  # unsigned
        _post(client, signing, payload, at=now, header=good.replace("t=", "t=1")),
        _post(client, signing, {**payload, "booking_id": "B-10"}, at=now, header=good),  # tampered
        _post(client, signing, payload, at=now, header=good.upper()),
    ]
    assert [response.status_code for response in responses] == [403] * 7
    booked_at, enrollments, events = _state(nurture_app, contact)
    assert booked_at is None and events == 0
    assert [tuple(row) for row in enrollments] == [("active", None)]


def test_signed_but_invalid_notice_is_422(nurture_app, client, signing):
    now = signing.unix(nurture_app.clock())
    assert _post(client, signing, {"booking_id": "B-4"}, at=now).status_code == 422
    assert _post(client, signing, {"email": "x@example.com"}, at=now).status_code == 422


def test_cli_marks_booked(nurture_app, make_contact, send, monkeypatch):
    from nurture.cli.main import app as cli

    contact = make_contact(email="walkin@example.com")
    send(contact)
    monkeypatch.setenv("NURTURE_DATABASE__URL", nurture_app.settings.database.url)
    result = CliRunner().invoke(cli, ["contacts", "booked", "WALKIN@example.com"])
    assert result.exit_code == 0, result.output
    assert "W***@example.com marked booked" in result.output
    assert "walkin@example.com" not in result.output
    booked_at, enrollments, events = _state(nurture_app, contact)
    assert booked_at is not None and events == 1
    assert [tuple(row) for row in enrollments] == [("exited", "booked")]
    missing = CliRunner().invoke(cli, ["contacts", "booked", "nobody@example.com"])
    assert missing.exit_code != 0
