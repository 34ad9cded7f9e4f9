"""A bounded fuzz pass: schemathesis generates requests from the app's own OpenAPI description
(links, unsubscribe, preferences, webhooks, the REST API); none may crash the server (5xx)."""

from __future__ import annotations

from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.definitions import load_sequence
from nurture.app import NurtureApp
from staff.api_keys import create_key
from storage.db import transaction
from storage.models import Campaign, CampaignState
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


def test_no_server_errors_in_the_rest_api(sqlite_app: NurtureApp) -> None:
    """Every /api/v1 operation with a valid write key, so requests get past the key check to
    the bodies, the Idempotency-Key and the database. Half the cases carry a real address, an
    existing contact's id or the running campaign's name (random strings alone stop at 404 and
    422). A 4xx (a refused body, a 409, a 429 from the key's bucket) is an answer; a 5xx is a
    bug. Bounded: 25 cases an operation, a few seconds in all."""
    with transaction(sqlite_app.sessions) as session:
        key = create_key(session, name="fuzz", scope="write", created_by="t", at=sqlite_app.clock())
        definition = load_sequence("spasm-relief").snapshot()
        session.add(Campaign(name="spasm", definition=definition, state=CampaignState.ACTIVE))
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(sqlite_app))
    operations = [
        result.ok()  # type: ignore[union-attr]  # an Err would raise here, as it should
        for result in schema.include(path_regex=r"^/api/v1/").get_all_operations()
    ]
    assert len(operations) >= 4, [operation.label for operation in operations]
    headers = {"Authorization": f"Bearer {key.secret}"}
    for operation in operations:

        @given(case=_with_known_values(operation))
        @settings(
            max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def never_crashes(case: schemathesis.Case) -> None:
            response = case.call(headers=headers)
            assert response.status_code < 500, (
                case.method,
                case.formatted_path,
                str(case.body)[:300],
                response.text[:300],
            )

        never_crashes()


def _with_known_values(operation: Any) -> st.SearchStrategy[schemathesis.Case]:
    def known(drawn: tuple[schemathesis.Case, str, str | None, int, bool]) -> schemathesis.Case:
        case, email, phone, contact_id, as_generated = drawn
        if as_generated:
            return case
        if isinstance(case.body, dict):
            case.body.update(email=email, **({"phone": phone} if phone else {}))
        parameters = case.path_parameters or {}
        if "contact_id" in parameters:
            parameters["contact_id"] = contact_id
        if "name" in parameters:
            parameters["name"] = "spasm"
        return case

    return st.tuples(
        operation.as_strategy(),
        st.sampled_from(["ana@example.com", "Ana@Example.COM", "bo@example.org"]),
        st.none() | st.sampled_from(["+13105550142", "(310) 555-0142", "+13105550143"]),
        st.integers(1, 4),
        st.booleans(),
    ).map(known)


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
    for path, method in (("/l/{token}", "get"), ("/u/{token}", "post")):
        # Read from request.path_params (web.links.token_parameter), documented by hand.
        [token] = spec["paths"][path][method]["parameters"]
        assert (token["name"], token["in"], token["required"]) == ("token", "path", True)
        assert token["schema"]["type"] == "string"
    booking = spec["paths"]["/webhooks/booking"]["post"]
    assert "X-Nurture-Signature" in booking["description"]
    assert "HMAC-SHA256" in booking["description"]
