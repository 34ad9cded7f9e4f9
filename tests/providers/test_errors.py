"""Provider answers mapped to what the engine does: retry (429, 5xx, 20429, and a connection
never made), fail for good (SendGrid 400, Twilio 21211/21614), fail and suppress (21610),
uncertain (no answer once the request was sent)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from core.errors import ConfigError
from providers.base import (
    OutgoingEmail,
    OutgoingSms,
    ProviderRejected,
    ProviderUnavailable,
    ProviderUncertain,
)
from providers.fakeserver import FakeProviders, RunningFake
from providers.pooled import PooledHttp
from providers.sendgrid import SendGridChannel, classify_http_error
from providers.twilio import TwilioChannel, classify

SID = "AC" + "b" * 32
EMAIL = OutgoingEmail(5, "pat@example.com", "care@x.com", "Care", "Hi", "<p>x</p>", "x")
TEXT = OutgoingSms(
    6, "+15005550004", "Hi", from_number="+13105550100", status_callback="http://x/s?m=6"
)


@pytest.mark.parametrize(
    ("status", "code", "kind", "suppress"),
    [
        (400, 21610, ProviderRejected, "stop"),
        (400, 21211, ProviderRejected, None),
        (400, 21614, ProviderRejected, None),
        (429, 20429, ProviderUnavailable, None),
        (429, None, ProviderUnavailable, None),
        (500, None, ProviderUnavailable, None),
        (503, 20500, ProviderUnavailable, None),
        (401, 20003, ProviderRejected, None),
    ],
)
def test_twilio_answers_are_classified(
    status: int, code: int | None, kind: type, suppress: str | None
) -> None:
    error = classify(status, code, "reason")
    assert isinstance(error, kind)
    assert getattr(error, "suppress", None) == suppress


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, ProviderRejected),
        (413, ProviderRejected),
        (429, ProviderUnavailable),
        (502, ProviderUnavailable),
    ],
)
def test_sendgrid_answers_are_classified(status: int, kind: type) -> None:
    error = classify_http_error(status, '{"errors": [{"message": "bad to"}]}', "7")
    assert isinstance(error, kind)
    assert "bad to" in str(error)
    if kind is ProviderUnavailable:
        assert error.retry_after == 7.0  # type: ignore[attr-defined]


def _send(channel: Any, payload: Any) -> Any:
    async def go() -> Any:
        try:
            return await channel.send(payload)
        finally:
            await channel.aclose()

    return asyncio.run(go())


def test_pooled_twilio_reads_the_error_code_from_the_body() -> None:
    fake = FakeProviders(rule=lambda kind, m, to, seen: (400, {"code": 21610, "message": "STOP"}))
    with RunningFake(fake) as running:
        channel = TwilioChannel(SID, "t", api_base_url=running.url)
        with pytest.raises(ProviderRejected) as caught:
            _send(channel, TEXT)
    assert caught.value.code == "21610" and caught.value.suppress == "stop"


def test_pooled_sendgrid_429_is_retryable_with_retry_after() -> None:
    fake = FakeProviders(rule=lambda kind, m, to, seen: (429, {"errors": [{"message": "slow"}]}))
    with RunningFake(fake) as running:
        channel = SendGridChannel("SG.x", running.url)
        with pytest.raises(ProviderUnavailable):
            _send(channel, EMAIL)


def test_a_refused_connection_is_unavailable_so_it_is_retried() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    for channel, payload in (
        (SendGridChannel("SG.x", f"http://127.0.0.1:{closed_port}"), EMAIL),
        (TwilioChannel(SID, "t", api_base_url=f"http://127.0.0.1:{closed_port}"), TEXT),
    ):
        with pytest.raises(ProviderUnavailable, match="cannot connect"):
            _send(channel, payload)


def test_a_connect_timeout_is_unavailable_so_it_is_retried() -> None:
    """A server whose accept queue is full never completes the handshake: nothing was sent."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        fillers = [socket.socket() for _ in range(3)]
        for filler in fillers:  # the queue's room, taken (the later ones never complete)
            filler.setblocking(False)
            filler.connect_ex(server.getsockname())
        try:
            channel = SendGridChannel("SG.x", url)
            channel.pool = PooledHttp("sendgrid", concurrency=1, timeout=5, connect_timeout=0.3)
            with pytest.raises(ProviderUnavailable, match=r"(?i)cannot connect: connection time"):
                _send(channel, EMAIL)
        finally:
            for filler in fillers:
                filler.close()


def test_a_read_timeout_after_the_request_was_sent_is_uncertain() -> None:
    for make, payload in (
        (lambda url: SendGridChannel("SG.x", url, timeout=0.2), EMAIL),
        (lambda url: TwilioChannel(SID, "t", api_base_url=url, timeout=0.2), TEXT),
    ):
        fake = FakeProviders(delay=1.0)  # five times the timeout: it answers too late
        with RunningFake(fake) as running:
            with pytest.raises(ProviderUncertain, match="no answer"):
                _send(make(running.url), payload)
        assert fake.count == 1  # it had the whole request


def test_a_connection_dropped_before_the_answer_is_uncertain() -> None:
    """The server reads the request, then hangs up without answering."""

    async def scenario() -> None:
        async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.close()

        server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        channel = SendGridChannel("SG.x", f"http://127.0.0.1:{port}")
        try:
            with pytest.raises(ProviderUncertain):
                await channel.send(EMAIL)
        finally:
            await channel.aclose()
            server.close()
            await server.wait_closed()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "url", ["http://api.example.com", "http://10.0.0.1:8080", "https://8.8.8.8"]
)
def test_test_urls_must_be_loopback(url: str) -> None:
    with pytest.raises(ConfigError):
        SendGridChannel("SG.x", url)
    with pytest.raises(ConfigError):
        TwilioChannel(SID, "t", api_base_url=url)


def test_pooled_twilio_posts_the_sdk_form_fields() -> None:
    seen: list[Any] = []
    fake = FakeProviders(on_request=seen.append)
    with RunningFake(fake) as running:
        channel = TwilioChannel(SID, "t", api_base_url=running.url)
        result = _send(channel, TEXT)
    assert result.provider_message_id.startswith("SM")
    assert seen[0].message_id == 6 and seen[0].to == "+15005550004"
