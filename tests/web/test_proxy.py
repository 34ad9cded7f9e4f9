"""X-Forwarded-* count only from the configured proxies (web.trusted_proxies)."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from core.settings import load_settings
from nurture.app import NurtureApp
from web.app import create_app


def _client_seen(
    sqlite_url, frozen_clock, channel, caplog, trusted: list[str], path: str = "/healthz"
) -> str:
    app = NurtureApp(
        settings=load_settings(database={"url": sqlite_url}, web={"trusted_proxies": trusted}),
        clock=frozen_clock,
        email_override=channel,
        sms_override=channel,
    )
    app.migrate()
    client = TestClient(create_app(app))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="nurture.web.access"):
        if path == "/healthz":
            client.get(path, headers={"X-Forwarded-For": "203.0.113.9"})
        else:  # a click and a one-click unsubscribe (invalid tokens: a 404 page, logged too)
            client.get(f"/l/{path}", headers={"X-Forwarded-For": "203.0.113.9"})
            client.post(
                f"/u/{path}",
                content=b"List-Unsubscribe=One-Click",
                headers={"X-Forwarded-For": "203.0.113.9"},
            )
    app.dispose()
    seen = {
        r.getMessage().rsplit("client=", 1)[1]
        for r in caplog.records
        if r.name == "nurture.web.access"
    }
    [client_address] = seen
    return client_address


@pytest.mark.parametrize(
    ("trusted", "seen"),
    [([], "testclient"), (["10.0.0.1"], "testclient"), (["testclient"], "203.0.113.9")],
)
def test_forwarded_for_only_from_trusted_proxies(
    sqlite_url, frozen_clock, channel, caplog, trusted, seen
):
    assert _client_seen(sqlite_url, frozen_clock, channel, caplog, trusted) == seen


@pytest.mark.parametrize(("trusted", "seen"), [([], "testclient"), (["testclient"], "203.0.113.9")])
def test_recipient_routes_see_the_forwarded_client_too(
    sqlite_url, frozen_clock, channel, caplog, trusted, seen
):
    assert _client_seen(sqlite_url, frozen_clock, channel, caplog, trusted, "token") == seen
