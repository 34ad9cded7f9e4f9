"""A bounded fuzz pass: schemathesis generates requests from the app's own OpenAPI description
(links, unsubscribe, preferences, webhooks); none may crash the server (5xx)."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from web.app import create_app

OUR_PATHS = r"^/(l|u|p|webhooks|healthz)"


@pytest.fixture
def web_schema(sqlite_app):
    api = create_app(sqlite_app)
    return schemathesis.openapi.from_asgi("/openapi.json", api).include(path_regex=OUR_PATHS)


schema = schemathesis.pytest.from_fixture("web_schema")


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    response = case.call()
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:200])


def test_openapi_documents_every_recipient_and_webhook_route(sqlite_app):
    spec = TestClient(create_app(sqlite_app)).get("/openapi.json").json()
    routes = {(path, method) for path, item in spec["paths"].items() for method in item}
    for expected in [
        ("/l/{token}", "get"),
        ("/u/{token}", "get"),
        ("/u/{token}", "post"),
        ("/p/{token}", "get"),
        ("/p/{token}", "post"),
        ("/webhooks/twilio/inbound", "post"),
        ("/webhooks/twilio/status", "post"),
        ("/webhooks/sendgrid/events", "post"),
        ("/webhooks/booking", "post"),
        ("/healthz", "get"),
    ]:
        assert expected in routes
    booking = spec["paths"]["/webhooks/booking"]["post"]
    assert "X-Nurture-Signature" in booking["description"]
    assert "HMAC-SHA256" in booking["description"]
