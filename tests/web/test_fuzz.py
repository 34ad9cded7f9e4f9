"""A bounded fuzz pass: schemathesis generates requests from the app's own OpenAPI description
(links, unsubscribe, preferences, webhooks); none may crash the server (5xx)."""

from __future__ import annotations

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from web.app import create_app

OUR_PATHS = r"^/(l|u|p|webhooks|healthz)"


def test_no_server_errors(sqlite_app) -> None:
    """Each recipient and webhook operation, fuzzed through the schema's own case strategy.

    Driven with hypothesis directly rather than schemathesis' pytest plugin: the plugin's lazy
    fixture mode writes pytest's private `Function._nodeid`, which pytest 9.2 no longer has."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(sqlite_app))
    operations = [
        result.ok() for result in schema.include(path_regex=OUR_PATHS).get_all_operations()
    ]
    assert len(operations) >= 8, [operation.label for operation in operations]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def never_crashes(case: schemathesis.Case) -> None:
            response = case.call()
            assert response.status_code < 500, (
                case.method,
                case.formatted_path,
                response.text[:200],
            )

        never_crashes()


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
