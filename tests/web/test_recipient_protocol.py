"""Clicks answered inside uvicorn's protocol (web.recipient_protocol), on a real server and socket:
the same answers as the routes, keep-alive and pipelining intact, everything else handed on."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from itsdangerous import TimestampSigner
from sqlalchemy import select

from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import Event
from web.app import create_app
from web.recipient_protocol import server_options


class Live:
    def __init__(self, api: Any, port: int) -> None:
        self.api, self.port = api, port

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)


@pytest.fixture
def live(nurture_app: NurtureApp, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    api = create_app(nurture_app)
    options = server_options(api)
    assert options["http"] != "httptools", "the click protocol is not in use"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        api, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **options
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(400):
        if server.started:
            break
        time.sleep(0.025)
    assert server.started, "uvicorn did not start"
    yield Live(api, port)
    server.should_exit = True
    thread.join(timeout=30)
    assert not thread.is_alive()


def _token(app: NurtureApp, message: int, destination: str = "booking") -> str:
    return app.signer.click_url(message, destination).rsplit("/", 1)[1]


def _get(path: str, *, version: str = "1.1", user_agent: str = "Mail/1.0") -> bytes:
    return f"GET {path} HTTP/{version}\r\nHost: x\r\nUser-Agent: {user_agent}\r\n\r\n".encode()


def _read_response(sock: socket.socket, buffer: bytearray) -> tuple[int, dict[str, str], bytes]:
    """One response off the socket (content-length framed); leftovers stay in `buffer`."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response")
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        assert name.lower() not in headers, f"duplicate header {name}"
        headers[name.lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    buffer[:] = rest[length:]
    return int(status_line.split()[1]), headers, rest[:length]


def _clicks(app: NurtureApp) -> list[Event]:
    with transaction(app.sessions) as session:
        return list(session.scalars(select(Event).where(Event.kind == "clicked")))


def test_clicks_answered_on_a_kept_alive_connection_and_recorded(
    nurture_app, make_contact, send, live, monkeypatch
):
    asgi_clicks = []
    fast_path = live.api.fast_path
    original = fast_path._click
    monkeypatch.setattr(
        fast_path, "_click", lambda *a: asgi_clicks.append(a) or original(*a), raising=True
    )
    contact = make_contact()
    message = send(contact)
    with live.connect() as sock:
        buffer = bytearray()
        for _ in range(3):
            sock.sendall(_get(f"/l/{_token(nurture_app, message)}"))
            status, headers, body = _read_response(sock, buffer)
            assert status == 302 and body == b""
            assert headers["location"].startswith("https://spinaldecompressionla.com/book?")
            assert "utm_campaign=web-test" in headers["location"]
            assert headers["cache-control"] == "no-store"
            assert headers["referrer-policy"] == "no-referrer"
            assert headers["content-length"] == "0" and "date" in headers
            assert "connection" not in headers and "set-cookie" not in headers
    assert asgi_clicks == []  # answered by the protocol, not by the ASGI fast path
    live.api.state.links.recorder.stop()  # what the lifespan's shutdown does: drain
    clicks = _clicks(nurture_app)
    assert len(clicks) == 3
    assert {(c.message_id, c.contact_id, c.step_index, c.user_agent) for c in clicks} == {
        (message, contact, 0, "Mail/1.0")
    }
    assert all(c.occurred_at == nurture_app.clock() for c in clicks)


def test_bad_tokens_are_handed_to_the_routes(nurture_app, make_contact, send, live):
    message = send(make_contact())
    good = _token(nurture_app, message)
    forged = TimestampSigner("another-secret-key-0123456789", salt="nurture.click")
    paths = [
        f"/l/{good[:-2]}xx",  # tampered
        f"/l/{_token(nurture_app, message + 999)}",  # unknown message
        f"/l/{_token(nurture_app, message, 'evil')}",  # unregistered destination
        "/l/" + forged.sign(f"{message}~booking").decode(),
        f"/l/{good}/extra",
    ]
    with live.connect() as sock:
        buffer = bytearray()
        for path in paths:
            sock.sendall(_get(path))
            status, headers, body = _read_response(sock, buffer)
            assert status == 404, path
            assert "location" not in headers and b"not valid" in body
    live.api.state.links.recorder.stop()
    assert _clicks(nurture_app) == []


def test_pipelined_requests_are_answered_in_order(nurture_app, make_contact, send, live):
    message = send(make_contact())
    good, bad = f"/l/{_token(nurture_app, message)}", "/l/not-a-token"
    with live.connect() as sock:
        sock.sendall(_get(bad) + _get(good) + _get(good) + _get(bad) + _get(good))
        buffer = bytearray()
        statuses = [_read_response(sock, buffer)[0] for _ in range(5)]
    assert statuses == [404, 302, 302, 404, 302]


def test_http_1_0_and_connection_close_are_honoured(nurture_app, make_contact, send, live):
    path = f"/l/{_token(nurture_app, send(make_contact()))}"
    for request in (
        _get(path, version="1.0"),
        f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode(),
    ):
        with live.connect() as sock:
            sock.sendall(request)
            buffer = bytearray()
            status, headers, _ = _read_response(sock, buffer)
            assert status == 302 and headers["connection"] == "close"
            assert sock.recv(1) == b""  # the server closed it


def test_other_requests_still_reach_the_app(nurture_app, make_contact, send, live):
    message = send(make_contact())
    token = _token(nurture_app, message)
    with live.connect() as sock:
        buffer = bytearray()
        sock.sendall(_get("/healthz"))
        assert _read_response(sock, buffer)[0] == 200
        sock.sendall(_get(f"/l/{token}?utm_source=x"))  # a query string: the full route
        status, headers, _ = _read_response(sock, buffer)
        assert status == 302 and headers["location"].startswith("https://")
        sock.sendall(f"POST /l/{token} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
        assert _read_response(sock, buffer)[0] == 405  # never a redirect
