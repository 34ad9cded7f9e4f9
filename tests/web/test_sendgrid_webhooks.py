"""SendGrid Signed Event Webhook, signed in the test with a P-256 key made with `cryptography`."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from contacts.suppressions import active_suppression
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import Contact, Event, Message, MessageState


def _event(kind: str, message_id: int, email: str, n: int, **extra) -> dict:
    return {
        "email": email,
        "timestamp": 1796148000 + n,  # 2026-12-01 18:00 UTC, the frozen clock
        "event": kind,
        "sg_event_id": f"evt-{kind}-{n}",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "nurture_message_id": str(message_id),
        **extra,
    }


def _count_events(app: NurtureApp) -> int:
    with transaction(app.sessions) as session:
        return session.scalar(select(func.count()).select_from(Event)) or 0


def _suppression(app: NurtureApp, email: str):
    with transaction(app.sessions) as session:
        return active_suppression(session, "email", email)


def test_batch_is_normalised_and_applied(nurture_app, make_contact, send, client, signing):
    delivered_to = make_contact(email="ana@example.com")
    bounced_to = make_contact(email="gone@example.com")
    complainer = make_contact(email="angry@example.com")
    leaver = make_contact(email="leaver@example.com")
    ids = {
        name: send(c)
        for name, c in [
            ("ana", delivered_to),
            ("gone", bounced_to),
            ("angry", complainer),
            ("leaver", leaver),
        ]
    }
    now = signing.unix(nurture_app.clock())
    events = [
        _event("processed", ids["ana"], "ana@example.com", 1),
        _event("delivered", ids["ana"], "ana@example.com", 2),
        _event("open", ids["ana"], "ana@example.com", 3),
        _event(
            "bounce",
            ids["gone"],
            "gone@example.com",
            4,
            type="bounce",
            status="5.1.1",
            reason="550 5.1.1 no such user",
        ),
        _event("spamreport", ids["angry"], "angry@example.com", 5),
        _event("group_unsubscribe", ids["leaver"], "leaver@example.com", 6, asm_group_id=1),
    ]
    response = signing.sendgrid_post(client, events, signing.sendgrid_key, timestamp=now)
    assert response.status_code == 200
    assert response.json() == {"received": 6, "new": 6, "duplicates": 0}
    with transaction(nurture_app.sessions) as session:
        states = {name: session.get_one(Message, mid).state for name, mid in ids.items()}
        assert session.get_one(Contact, leaver).email_consent == "opted_out"
    assert states["ana"] == MessageState.DELIVERED
    assert states["gone"] == MessageState.UNDELIVERED
    assert _suppression(nurture_app, "gone@example.com").reason == "bounced"
    assert _suppression(nurture_app, "angry@example.com").reason == "complained"
    assert _suppression(nurture_app, "leaver@example.com").reason == "unsubscribed"
    assert _suppression(nurture_app, "ana@example.com") is None

    # The same batch again (a provider retry, or a replay inside the window) changes nothing.
    before = _count_events(nurture_app)
    again = signing.sendgrid_post(client, events, signing.sendgrid_key, timestamp=now + 5)
    assert again.json() == {"received": 6, "new": 0, "duplicates": 6}
    assert _count_events(nurture_app) == before


def test_blocked_bounce_and_deferred_do_not_suppress(
    nurture_app, make_contact, send, client, signing
):
    message = send(make_contact(email="busy@example.com"))
    events = [
        _event("deferred", message, "busy@example.com", 1, attempt="1"),
        _event("bounce", message, "busy@example.com", 2, type="blocked", reason="try later"),
    ]
    now = signing.unix(nurture_app.clock())
    assert (
        signing.sendgrid_post(client, events, signing.sendgrid_key, timestamp=now).status_code
        == 200
    )
    assert _suppression(nurture_app, "busy@example.com") is None


def test_late_processed_does_not_undo_delivered(nurture_app, make_contact, send, client, signing):
    message = send(make_contact(email="ana@example.com"))
    now = signing.unix(nurture_app.clock())
    signing.sendgrid_post(
        client,
        [_event("delivered", message, "ana@example.com", 2)],
        signing.sendgrid_key,
        timestamp=now,
    )
    signing.sendgrid_post(
        client,
        [_event("processed", message, "ana@example.com", 1)],
        signing.sendgrid_key,
        timestamp=now,
    )
    with transaction(nurture_app.sessions) as session:
        assert session.get_one(Message, message).state == MessageState.DELIVERED


def test_forged_stale_unsigned_and_tampered_batches_change_nothing(
    nurture_app, make_contact, send, client, signing
):
    message = send(make_contact(email="victim@example.com"))
    events = [_event("spamreport", message, "victim@example.com", 1)]
    now = signing.unix(nurture_app.clock())
    other_key = ec.generate_private_key(ec.SECP256R1())
    responses = [
        signing.sendgrid_post(client, events, other_key, timestamp=now),  # forged
        signing.sendgrid_post(client, events, signing.sendgrid_key, timestamp=now - 3600),  # stale
        signing.sendgrid_post(client, events, signing.sendgrid_key, timestamp=now + 3600),  # ahead
        signing.sendgrid_post(client, events, None),  # unsigned
    ]
    # Tampered: a valid signature over one body, sent with another.
    import base64
    import json

    from cryptography.hazmat.primitives import hashes

    body = (json.dumps([_event("open", message, "victim@example.com", 1)]) + "\r\n").encode()
    signature = signing.sendgrid_key.sign(str(now).encode() + body, ec.ECDSA(hashes.SHA256()))
    responses.append(
        client.post(
            "/webhooks/sendgrid/events",
            content=(json.dumps(events) + "\r\n").encode(),
            headers={
                "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
                "X-Twilio-Email-Event-Webhook-Timestamp": str(now),
            },
        )
    )
    responses.append(
        client.post(
            "/webhooks/sendgrid/events",
            content=b"[]",
            headers={
                "X-Twilio-Email-Event-Webhook-Signature": "%%%not-base64",
                "X-Twilio-Email-Event-Webhook-Timestamp": str(now),
            },
        )
    )
    assert [response.status_code for response in responses] == [403] * 6
    assert _count_events(nurture_app) == 0
    assert _suppression(nurture_app, "victim@example.com") is None


def test_signed_garbage_is_a_400(nurture_app, client, signing):
    now = signing.unix(nurture_app.clock())
    for body in (b"not json", b'{"event": "open"}', b"[1, 2]"):
        response = signing.sendgrid_post(client, [], signing.sendgrid_key, timestamp=now, body=body)
        assert response.status_code == 400


def test_unconfigured_key_is_503(nurture_app, client, signing, monkeypatch):
    client.app.state.sendgrid_verifier.public_key = ""
    client.app.state.sendgrid_verifier.__dict__.pop("helper", None)
    now = signing.unix(nurture_app.clock())
    response = signing.sendgrid_post(client, [], signing.sendgrid_key, timestamp=now)
    assert response.status_code == 503
