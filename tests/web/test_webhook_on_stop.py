"""Issue 19's test of done: a registered webhook receives a signed `contact.opted_out` within
seconds of a STOP texted through the signed Twilio webhook, from the worker's own clock (the
one test here that waits for it), and is retried while the receiver answers 500 (ticks driven
directly, on the frozen app clock)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from nurture.app import NurtureApp
from scheduler.webhooks import BACKOFF, INTERVAL, Deliverer
from staff.webhook_endpoints import register
from storage.db import transaction
from storage.models import WebhookDelivery
from tests.scheduler.webhook_receiver import receiver

PHONE = "+13105550123"
INBOUND = "/webhooks/twilio/inbound"


def _stop(sid: str) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "AccountSid": "AC" + "a" * 32,
        "From": PHONE,
        "To": "+13105550100",
        "Body": "STOP",
        "NumMedia": "0",
        "SmsStatus": "received",
    }


def _register(app: NurtureApp, url: str) -> str:
    with transaction(app.sessions) as session:
        return register(
            session, url=url, event_types=["contact.opted_out"], created_by="t", at=app.clock(),
            allow_private=app.settings.webhooks.allow_private_addresses,
        ).secret  # fmt: skip


def _deliverer(app: NurtureApp) -> Deliverer:
    return Deliverer(
        app.sessions, app.clock, allow_private=app.settings.webhooks.allow_private_addresses
    )


def _signed(secret: str, request_headers: dict[str, str], body: bytes) -> bool:
    fields = dict(part.split("=", 1) for part in request_headers["X-Nurture-Signature"].split(","))
    mac = hmac.new(secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(mac.hexdigest(), fields["sha256"])


def test_a_stop_reaches_the_webhook_within_seconds_from_the_workers_clock(
    nurture_app: NurtureApp, make_contact: Any, client: Any, signing: Any
) -> None:
    """The worker's own clock, running: the webhooks job ticks every INTERVAL seconds."""
    contact = make_contact(phone=PHONE, sms=True)
    with receiver() as hook:
        secret = _register(nurture_app, hook.url)
        clock = nurture_app.engine_clock()
        clock.start()
        try:
            answered = signing.twilio_post(client, INBOUND, _stop("SMstop1"))
            assert answered.status_code == 200
            deadline = time.monotonic() + INTERVAL + 5
            while not _delivered(nurture_app, attempts=1):
                assert time.monotonic() < deadline, "no delivery within seconds of the STOP"
                time.sleep(0.02)
        finally:
            clock.stop()
    [got] = hook.requests
    assert _signed(secret, got.headers, got.body)
    payload = json.loads(got.body)
    assert payload["type"] == "contact.opted_out"
    assert payload["contact"] == {"id": contact, "phone": PHONE}
    assert payload["data"]["channel"] == "sms" and payload["data"]["reason"] == "stop"


def test_a_stop_whose_receiver_answers_500_is_retried_on_the_apps_clock(
    nurture_app: NurtureApp, make_contact: Any, client: Any, signing: Any
) -> None:
    make_contact(phone=PHONE, sms=True)
    with receiver() as hook:
        hook.status = 500
        secret = _register(nurture_app, hook.url)
        signing.twilio_post(client, INBOUND, _stop("SMstop3"))
        deliverer = _deliverer(nurture_app)
        deliverer.tick()
        assert _failed(nurture_app, attempts=1) and len(hook.requests) == 1
        nurture_app.clock.advance(seconds=BACKOFF[0] - 1)
        deliverer.tick()  # not yet due
        assert len(hook.requests) == 1
        nurture_app.clock.advance(seconds=1)  # the app's clock reaches the retry
        deliverer.tick()
        assert _failed(nurture_app, attempts=2) and len(hook.requests) == 2
        hook.status = 200
        nurture_app.clock.advance(seconds=BACKOFF[1])
        deliverer.tick()
        assert _delivered(nurture_app, attempts=3)
    first, second, third = hook.requests
    assert all(_signed(secret, r.headers, r.body) for r in (first, second, third))
    assert json.loads(third.body)["id"] == json.loads(first.body)["id"]  # the dedupe key


def _failed(app: NurtureApp, *, attempts: int) -> bool:
    """The attempt is posted and its 500 recorded (the retry is planned from that moment)."""
    with transaction(app.sessions, immediate=False) as session:
        delivery = session.scalars(select(WebhookDelivery)).one_or_none()
        return (
            delivery is not None
            and delivery.attempts == attempts
            and delivery.last_status_code == 500
            # after the claim's lease, the retry planned from this attempt's answer
            and delivery.next_attempt_at == app.clock() + timedelta(seconds=BACKOFF[attempts - 1])
        )


def _delivered(app: NurtureApp, *, attempts: int) -> bool:
    with transaction(app.sessions, immediate=False) as session:
        delivery = session.scalars(select(WebhookDelivery)).one_or_none()
        return (
            delivery is not None
            and delivery.delivered_at is not None
            and delivery.attempts == attempts
        )


def test_a_stop_is_delivered_on_the_next_tick_after_it(
    nurture_app: NurtureApp, make_contact: Any, client: Any, signing: Any
) -> None:
    make_contact(phone=PHONE, sms=True)
    with receiver() as hook:
        _register(nurture_app, hook.url)
        signing.twilio_post(client, INBOUND, _stop("SMstop2"))
        signing.twilio_post(client, INBOUND, _stop("SMstop2"))  # Twilio's retry of the same
        deliverer = _deliverer(nurture_app)
        deliverer.tick()
        nurture_app.clock.advance(minutes=5)
        deliverer.tick()
    assert [json.loads(r.body)["type"] for r in hook.requests] == ["contact.opted_out"]
    with transaction(nurture_app.sessions, immediate=False) as session:
        delivery = session.scalars(select(WebhookDelivery)).one()
        assert delivery.delivered_at is not None
        assert delivery.next_attempt_at is None and delivery.created_at < nurture_app.clock()
        assert nurture_app.clock() - delivery.created_at == timedelta(minutes=5)
