"""X-Forwarded-* count only from the configured proxies (web.trusted_proxies)."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from core.settings import load_settings
from nurture.app import NurtureApp
from web.app import create_app


def _client_seen(sqlite_url, frozen_clock, channel, caplog, trusted: list[str]) -> str:
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
        client.get("/healthz", headers={"X-Forwarded-For": "203.0.113.9"})
    app.dispose()
    [line] = [r.getMessage() for r in caplog.records if r.name == "nurture.web.access"]
    return line.rsplit("client=", 1)[1]


@pytest.mark.parametrize(
    ("trusted", "seen"),
    [([], "testclient"), (["10.0.0.1"], "testclient"), (["testclient"], "203.0.113.9")],
)
def test_forwarded_for_only_from_trusted_proxies(
    sqlite_url, frozen_clock, channel, caplog, trusted, seen
):
    assert _client_seen(sqlite_url, frozen_clock, channel, caplog, trusted) == seen
