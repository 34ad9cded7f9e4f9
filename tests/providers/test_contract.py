"""Contract tests: our providers' one send path (payloads built by the SendGrid SDK's Mail helper
and the Twilio SDK's form fields, tests/providers/test_twilio_form.py) against Prism mocks built
from the providers' official OpenAPI specs. Prism rejects anything that breaks the spec, so a
pass means the payload has a shape the API accepts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from campaigns.definitions import load_sequence
from core.clock import FrozenClock
from core.settings import load_settings
from nurture.app import NurtureApp
from providers.base import OutgoingEmail, OutgoingSms, ProviderRejected, ProviderUnavailable
from providers.sendgrid import SendGridChannel
from providers.twilio import TwilioChannel

pytestmark = pytest.mark.contract

SID = "AC" + "a" * 32
NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)


@pytest.fixture
def composed(tmp_path: Path) -> Callable[[str], Any]:
    """A real composed message (List-Unsubscribe headers, custom_args, StatusCallback)."""
    app = NurtureApp(
        settings=load_settings(database={"url": f"sqlite:///{tmp_path / 'n.db'}"}),
        clock=FrozenClock(NOW),
    )
    sequence = load_sequence("spasm-relief")

    def make(channel: str) -> Any:
        step = next(step for step in sequence.steps if step.channel == channel)
        return app.composer.compose(
            sequence,
            step,
            {"first_name": "Maria", "last_name": "Lopez", "custom_fields": {}},
            message_id=41,
            contact_id=7,
            to="maria.lopez@example.com" if channel == "email" else "+12135550101",
            campaign=sequence.name,
        )

    return make


def _run(coroutine_factory: Callable[[], Any]) -> Any:
    async def go() -> Any:
        try:
            return await coroutine_factory()
        finally:
            await asyncio.sleep(0)

    return asyncio.run(go())


def test_sendgrid_send_is_accepted(provider_mocks: dict[str, str], composed: Any) -> None:
    channel = SendGridChannel("SG.contract", provider_mocks["sendgrid"])
    email = composed("email")
    assert email.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    async def send() -> Any:
        try:
            return await channel.send(email)
        finally:
            await channel.aclose()

    assert _run(send).provider == "sendgrid"


def test_sendgrid_rejects_a_payload_breaking_the_spec(provider_mocks: dict[str, str]) -> None:
    channel = SendGridChannel("SG.contract", provider_mocks["sendgrid"])
    broken = OutgoingEmail(1, "not-an-address", "care@x.com", "Care", "Hi", "<p>x</p>", "x")

    async def send() -> Any:
        try:
            return await channel.send(broken)
        finally:
            await channel.aclose()

    with pytest.raises(ProviderRejected) as caught:
        _run(send)
    assert caught.value.code == "400"


def test_twilio_send_is_accepted(provider_mocks: dict[str, str], composed: Any) -> None:
    channel = TwilioChannel(SID, "token", api_base_url=provider_mocks["twilio"])
    text = composed("sms")
    assert "m=41" in text.status_callback

    async def send() -> Any:
        try:
            return await channel.send(text)
        finally:
            await channel.aclose()

    result = _run(send)
    assert result.provider_message_id.startswith("SM") and result.status == "queued"


def test_twilio_rejects_a_bad_account_sid(provider_mocks: dict[str, str]) -> None:
    channel = TwilioChannel("ACnot-a-sid", "token", api_base_url=provider_mocks["twilio"])
    text = OutgoingSms(1, "+12135550101", "Hello", from_number="+13105550100")

    async def send() -> Any:
        try:
            return await channel.send(text)
        finally:
            await channel.aclose()

    with pytest.raises(ProviderRejected):
        _run(send)


def test_the_engine_sends_through_both_mocks(
    provider_mocks: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settings point the real channels at the mocks; a tick sends an email and a text."""
    from sqlalchemy import select

    from campaigns import lifecycle
    from contacts.consent import record_consent
    from storage.db import transaction
    from storage.models import ConsentStatus, Contact, Message, MessageState

    monkeypatch.setenv("SENDGRID_API_KEY", "SG.contract")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "token")
    app = NurtureApp(
        settings=load_settings(
            database={"url": f"sqlite:///{tmp_path / 'n.db'}"},
            email={"provider": "sendgrid"},
            sms={"provider": "twilio", "segments_per_second": 100.0},
            sendgrid={"api_host": provider_mocks["sendgrid"]},
            twilio={"api_base_url": provider_mocks["twilio"]},
        ),
        clock=FrozenClock(NOW),
    )
    app.migrate()
    with transaction(app.sessions) as session:
        contact = Contact(
            first_name="Maria",
            email="maria@example.com",
            phone="+12135550101",
            timezone="America/Los_Angeles",
        )
        contact.add_tags(["demo"])
        session.add(contact)
        session.flush()
        record_consent(
            session,
            contact.id,
            "email",
            ConsentStatus.OPTED_IN,
            source="t",
            evidence="form",
            occurred_at=NOW,
        )
        record_consent(
            session,
            contact.id,
            "sms",
            ConsentStatus.OPTED_IN,
            source="t",
            evidence="form",
            occurred_at=NOW,
        )
        lifecycle.launch(session, load_sequence("demo"), now=NOW)
    try:
        for _ in range(3):
            app.planner.tick()
            app.dispatcher.tick()
            app.clock.advance(seconds=20)  # type: ignore[attr-defined]
        with transaction(app.sessions, immediate=False) as session:
            rows = list(session.scalars(select(Message).order_by(Message.step_index)))
        assert [(row.channel, row.state) for row in rows][:2] == [
            ("email", MessageState.SENT),
            ("sms", MessageState.SENT),
        ]
        assert rows[1].provider_message_id.startswith("SM")
    finally:
        app.dispatcher.shutdown()
        app.dispose()


def test_twilio_messages_list_is_read_through_the_sdk(provider_mocks: dict[str, str]) -> None:
    """The settling step's lookup (scheduler/settle.py): the SDK's messages.list with To and
    the DateSent window, accepted by the spec's mock and read back as provider evidence."""
    channel = TwilioChannel(SID, "token", api_base_url=provider_mocks["twilio"])
    after, before = NOW - timedelta(minutes=1), NOW + timedelta(minutes=6)
    found = asyncio.run(channel.find_sent("+12135550101", after, before))
    assert found and all(item.sid[:2] in ("SM", "MM") for item in found)  # MM: with media
    first = found[0]
    assert first.status and first.from_number and first.created_at is not None
    assert first.created_at.tzinfo is not None  # RFC 2822 dates parsed, aware


def test_twilio_messages_list_failure_is_unavailable(provider_mocks: dict[str, str]) -> None:
    """A list the mock refuses (an account SID breaking the spec's pattern) is a failed lookup,
    on which the settling step decides nothing."""
    channel = TwilioChannel("ACnot-a-sid", "token", api_base_url=provider_mocks["twilio"])
    with pytest.raises(ProviderUnavailable, match="Messages list failed"):
        asyncio.run(channel.find_sent("+12135550101", NOW, NOW + timedelta(minutes=5)))
