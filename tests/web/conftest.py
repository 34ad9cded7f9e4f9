"""Web fixtures: provider secrets in the environment, a P-256 key for SendGrid, a sent campaign,
and clients that sign requests with the providers' real algorithms."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator

from campaigns.definitions import Sequence
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import Campaign, CampaignState, Enrollment, Message, MessageState
from web.app import create_app

TWILIO_TOKEN = "twilio-test-auth-token-0123456789"
BOOKING_SECRET = "booking-shared-secret-0123456789"
PUBLIC_BASE = "http://127.0.0.1:8000"


@pytest.fixture(scope="session")
def sendgrid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_key_b64(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


@pytest.fixture(autouse=True)
def provider_secrets(
    monkeypatch: pytest.MonkeyPatch, sendgrid_key: ec.EllipticCurvePrivateKey
) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
    monkeypatch.setenv("NURTURE_BOOKING_WEBHOOK_SECRET", BOOKING_SECRET)
    monkeypatch.setenv("NURTURE_SENDGRID_WEBHOOK_PUBLIC_KEY", public_key_b64(sendgrid_key))


SEQUENCE = Sequence(
    name="web-test",
    title="Web test sequence",
    template_folder="spasm-relief",
    steps=[
        {"name": "welcome", "channel": "email", "template": "01-welcome"},
        {"name": "cycle-text", "channel": "sms", "template": "02-cycle", "delay": "1d"},
    ],
)


@pytest.fixture
def campaign_id(nurture_app: NurtureApp) -> int:
    with transaction(nurture_app.sessions) as session:
        campaign = Campaign(
            name=SEQUENCE.name, definition=SEQUENCE.snapshot(), state=CampaignState.ACTIVE
        )
        session.add(campaign)
        session.flush()
        return campaign.id


@pytest.fixture
def another_campaign(nurture_app: NurtureApp) -> int:
    with transaction(nurture_app.sessions) as session:
        campaign = Campaign(
            name="web-test-2", definition=SEQUENCE.snapshot(), state=CampaignState.ACTIVE
        )
        session.add(campaign)
        session.flush()
        return campaign.id


@pytest.fixture
def send(nurture_app: NurtureApp, campaign_id: int) -> Callable[..., int]:
    """send(contact_id, step_index=0, state=SENT, provider_message_id=None) -> message id."""

    def make(
        contact_id: int,
        step_index: int = 0,
        state: MessageState = MessageState.SENT,
        provider_message_id: str | None = None,
        provider: str = "memory",
        campaign: int | None = None,
    ) -> int:
        now = nurture_app.clock()
        in_campaign = campaign or campaign_id
        with transaction(nurture_app.sessions) as session:
            enrollment = session.query(Enrollment).filter_by(
                campaign_id=in_campaign, contact_id=contact_id
            ).one_or_none() or Enrollment(
                campaign_id=in_campaign, contact_id=contact_id, enrolled_at=now
            )
            session.add(enrollment)
            session.flush()
            message = Message(
                enrollment_id=enrollment.id,
                campaign_id=in_campaign,
                contact_id=contact_id,
                step_index=step_index,
                channel=SEQUENCE.steps[step_index].channel,
                state=state,
                due_at=now,
                sent_at=now,
                provider=provider,
                provider_message_id=provider_message_id,
            )
            session.add(message)
            session.flush()
            return message.id

    return make


@pytest.fixture
def client(nurture_app: NurtureApp) -> Iterator[TestClient]:
    """A client outside any lifespan: writes are synchronous, so the DB is checked at once."""
    with_errors = TestClient(
        create_app(nurture_app), follow_redirects=False, raise_server_exceptions=False
    )
    yield with_errors


class Signing:
    """Helpers the tests use (tests cannot import conftest under --import-mode=importlib)."""

    twilio_token = TWILIO_TOKEN
    booking_secret = BOOKING_SECRET
    public_base = PUBLIC_BASE

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self.sendgrid_key = key

    @staticmethod
    def path_of(url: str) -> str:
        return path_of(url)

    twilio_post = staticmethod(lambda *a, **k: twilio_post(*a, **k))
    sendgrid_post = staticmethod(lambda *a, **k: sendgrid_post(*a, **k))
    unix = staticmethod(lambda moment: unix(moment))


@pytest.fixture
def signing(sendgrid_key: ec.EllipticCurvePrivateKey) -> Signing:
    return Signing(sendgrid_key)


def path_of(url: str) -> str:
    return url.replace(PUBLIC_BASE, "")


def twilio_post(
    client: TestClient,
    path: str,
    params: dict[str, str],
    *,
    token: str = TWILIO_TOKEN,
    signed_url: str | None = None,
    signature: str | None = None,
) -> Any:
    url = signed_url or f"{PUBLIC_BASE}{path}"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    sig = (
        signature
        if signature is not None
        else RequestValidator(token).compute_signature(url, params)
    )
    if sig:
        headers["X-Twilio-Signature"] = sig
    return client.post(path, content=urlencode(params), headers=headers)


def sendgrid_post(
    client: TestClient,
    events: list[dict[str, Any]],
    key: ec.EllipticCurvePrivateKey | None,
    *,
    timestamp: int | None = None,
    body: bytes | None = None,
) -> Any:
    raw = body if body is not None else (json.dumps(events) + "\r\n").encode()
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    headers = {"Content-Type": "application/json"}
    if key is not None:
        signature = key.sign(stamp.encode() + raw, ec.ECDSA(hashes.SHA256()))
        headers["X-Twilio-Email-Event-Webhook-Signature"] = base64.b64encode(signature).decode()
        headers["X-Twilio-Email-Event-Webhook-Timestamp"] = stamp
    return client.post("/webhooks/sendgrid/events", content=raw, headers=headers)


def unix(moment: datetime) -> int:
    return int(moment.timestamp())
