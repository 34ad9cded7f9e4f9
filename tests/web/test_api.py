"""/api/v1: keys and scopes, contacts with consent, events, reads, idempotency, rate limits and
RFC 9457 problems."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from core.clock import FrozenClock
from nurture.app import NurtureApp
from staff.api_keys import create_key, revoke_key
from storage.db import transaction
from storage.models import ApiKey, ConsentEvent, Contact, Enrollment, Event, Suppression

EVIDENCE = "web form https://clinic.test/join, 2026-12-01T10:00-08:00, IP 203.0.113.9"


def make_key(app: NurtureApp, scope: str = "write") -> tuple[int, str]:
    with transaction(app.sessions) as session:
        new = create_key(
            session, name=f"{scope} client", scope=scope, created_by="t", at=app.clock()
        )
    return new.id, new.secret


@pytest.fixture
def writer(nurture_app: NurtureApp) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key(nurture_app)[1]}"}


@pytest.fixture
def reader(nurture_app: NurtureApp) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key(nurture_app, 'read')[1]}"}


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://") and body["title"] and body["detail"]
    return dict(body)


def post_contact(client: TestClient, headers: dict[str, str], **body: Any) -> Any:
    return client.post("/api/v1/contacts", json=body, headers=headers)


def test_creates_a_contact_with_email_and_sms_consent_in_the_ledger(
    client: TestClient, writer: dict[str, str], nurture_app: NurtureApp
) -> None:
    response = post_contact(
        client, writer, email="Maria@Example.COM", phone="(310) 555-0142", first_name="Maria",
        email_consent={"status": "opted_in", "evidence": EVIDENCE},
        sms_consent={"status": "opted_in", "evidence": EVIDENCE},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    assert response.json()["created"] is True
    with nurture_app.sessions() as session:
        contact = session.get_one(Contact, response.json()["id"])
        assert (contact.email, contact.phone) == ("maria@example.com", "+13105550142")
        assert (contact.email_consent, contact.sms_consent) == ("opted_in", "opted_in")
        ledger = session.scalars(select(ConsentEvent).where(ConsentEvent.contact_id == contact.id))
        events = {(e.channel, e.source, e.evidence, e.occurred_at) for e in ledger}
    assert events == {
        (channel, "api: write client", EVIDENCE, nurture_app.clock())
        for channel in ("email", "sms")
    }


def test_an_sms_opt_in_without_evidence_is_refused_and_nothing_is_kept(
    client: TestClient, writer: dict[str, str], nurture_app: NurtureApp
) -> None:
    response = post_contact(
        client, writer, email="noproof@example.com", phone="3105550143",
        sms_consent={"status": "opted_in"},
    )  # fmt: skip
    assert "TCPA" in assert_problem(response, 422)["detail"]
    with nurture_app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == 0


def test_a_consent_time_in_the_future_is_refused(
    client: TestClient, writer: dict[str, str]
) -> None:
    response = post_contact(
        client, writer, email="later@example.com",
        email_consent={"status": "opted_in", "evidence": "x", "occurred_at": "2027-01-01T00:00Z"},
    )  # fmt: skip
    assert "future" in assert_problem(response, 422)["detail"]


def test_a_second_post_updates_the_same_contact_by_phone_and_fills_blanks(
    client: TestClient, writer: dict[str, str], nurture_app: NurtureApp
) -> None:
    first = post_contact(client, writer, phone="310-555-0144", first_name="Ana")
    second = post_contact(
        client, writer, phone="+1 310 555 0144", email="ana@example.com", first_name="Other",
        email_consent={"status": "opted_in", "evidence": EVIDENCE},
    )  # fmt: skip
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json() == {"id": first.json()["id"], "created": False}
    with nurture_app.sessions() as session:
        contact = session.get_one(Contact, first.json()["id"])
        assert (contact.first_name, contact.email, contact.email_consent) == (
            "Ana", "ana@example.com", "opted_in",
        )  # fmt: skip


def test_an_opt_out_suppresses_and_an_opt_in_over_it_is_a_conflict(
    client: TestClient, writer: dict[str, str], nurture_app: NurtureApp
) -> None:
    out = post_contact(
        client, writer, email="out@example.com", email_consent={"status": "opted_out"}
    )
    assert out.status_code == 201
    again = post_contact(
        client, writer, email="out@example.com",
        email_consent={"status": "opted_in", "evidence": EVIDENCE},
    )  # fmt: skip
    assert_problem(again, 409)
    with nurture_app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 1
        assert session.get_one(Contact, out.json()["id"]).email_consent == "opted_out"


def test_a_booking_ends_the_nurture_and_other_events_are_recorded(
    client: TestClient,
    writer: dict[str, str],
    nurture_app: NurtureApp,
    make_contact: Any,
    send: Any,
) -> None:
    contact_id = make_contact()
    send(contact_id)
    booked = client.post(
        f"/api/v1/contacts/{contact_id}/events",
        json={"kind": "booked", "reference": "apt-1"},
        headers=writer,
    )
    assert booked.status_code == 201, booked.text
    assert booked.json()["exited_campaigns"] == ["web-test"]
    again = client.post(
        f"/api/v1/contacts/{contact_id}/events",
        json={"kind": "booked", "reference": "apt-1"},
        headers=writer,
    )
    assert again.json()["status"] == "duplicate"
    no_show = client.post(
        f"/api/v1/contacts/{contact_id}/events", json={"kind": "no_show"}, headers=writer
    )
    assert no_show.status_code == 201
    with nurture_app.sessions() as session:
        enrollment = session.scalars(select(Enrollment)).one()
        assert (enrollment.state, enrollment.exit_reason) == ("exited", "booked")
        kinds = sorted(session.scalars(select(Event.kind).where(Event.contact_id == contact_id)))
        assert kinds == ["booked", "no_show"]
        assert session.get_one(Contact, contact_id).booked_at == nurture_app.clock()


def test_an_unknown_event_kind_and_an_unknown_contact_are_problems(
    client: TestClient, writer: dict[str, str], make_contact: Any
) -> None:
    contact_id = make_contact()
    bad = client.post(
        f"/api/v1/contacts/{contact_id}/events", json={"kind": "dance"}, headers=writer
    )
    assert assert_problem(bad, 422)["errors"]
    missing = client.post("/api/v1/contacts/999/events", json={"kind": "attended"}, headers=writer)
    assert_problem(missing, 404)
    assert_problem(client.get("/api/v1/nothing-here", headers=writer), 404)


def test_reads_consent_per_channel_and_enrollments(
    client: TestClient, reader: dict[str, str], make_contact: Any, send: Any
) -> None:
    contact_id = make_contact(phone="+13105550145")
    send(contact_id)
    response = client.get(f"/api/v1/contacts/{contact_id}", headers=reader)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["consent"] == {
        "email": {"status": "opted_in", "has_address": True},
        "sms": {"status": None, "has_address": True},
    }
    assert [(e["campaign"], e["state"]) for e in body["enrollments"]] == [("web-test", "active")]
    assert_problem(client.get("/api/v1/contacts/12345", headers=reader), 404)


def test_reads_a_campaigns_funnel(
    client: TestClient, reader: dict[str, str], make_contact: Any, send: Any
) -> None:
    send(make_contact())
    response = client.get("/api/v1/campaigns/web-test/funnel", headers=reader)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["enrolled"], body["sent"]) == ("web-test", 1, 1)
    assert body["stages"][0] == {"stage": "enrolled", "people": 1, "share": 1.0}
    assert body["steps"][0]["name"] == "welcome"
    assert body["branches"] == []  # a sequence without branches
    assert_problem(client.get("/api/v1/campaigns/nope/funnel", headers=reader), 404)


def test_the_same_idempotency_key_replays_and_changes_nothing(
    client: TestClient, writer: dict[str, str], nurture_app: NurtureApp
) -> None:
    headers = writer | {"Idempotency-Key": "signup-42"}
    body = {"email": "once@example.com", "email_consent": {"status": "opted_in", "evidence": "x"}}
    first = client.post("/api/v1/contacts", json=body, headers=headers)
    replay = client.post("/api/v1/contacts", json=body, headers=headers)
    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay.json() == first.json() and replay.headers["Idempotent-Replayed"] == "true"
    with nurture_app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 1
    other = client.post("/api/v1/contacts", json=body | {"first_name": "Changed"}, headers=headers)
    assert assert_problem(other, 422)["type"].endswith("idempotency-key-reused")


def test_an_idempotency_key_expires_after_a_day(
    client: TestClient, writer: dict[str, str], frozen_clock: FrozenClock
) -> None:
    headers = writer | {"Idempotency-Key": "k"}
    first = client.post("/api/v1/contacts", json={"email": "a@example.com"}, headers=headers)
    frozen_clock.advance(hours=24, seconds=1)
    later = client.post("/api/v1/contacts", json={"email": "b@example.com"}, headers=headers)
    assert (first.status_code, later.status_code) == (201, 201)
    assert later.json()["id"] != first.json()["id"]


def test_no_key_a_wrong_key_and_a_revoked_key_are_401(
    client: TestClient, nurture_app: NurtureApp
) -> None:
    key_id, secret = make_key(nurture_app)
    assert_problem(client.get("/api/v1/contacts/1"), 401)
    assert_problem(client.get("/api/v1/contacts/1", headers={"Authorization": "Bearer nk_x"}), 401)
    with transaction(nurture_app.sessions) as session:
        revoke_key(session, key_id, at=nurture_app.clock())
    refused = client.post(
        "/api/v1/contacts", json={"email": "x@example.com"},
        headers={"Authorization": f"Bearer {secret}"},
    )  # fmt: skip
    assert assert_problem(refused, 401) and refused.headers["WWW-Authenticate"] == "Bearer"


def test_a_read_key_is_refused_on_post(client: TestClient, reader: dict[str, str]) -> None:
    response = post_contact(client, reader, email="r@example.com")
    assert "scope" in assert_problem(response, 403)["detail"]


def test_last_used_is_written_at_most_once_a_minute(
    client: TestClient, nurture_app: NurtureApp, frozen_clock: FrozenClock
) -> None:
    key_id, secret = make_key(nurture_app, "read")
    headers = {"Authorization": f"Bearer {secret}"}
    start = frozen_clock()
    client.get("/api/v1/contacts/1", headers=headers)
    frozen_clock.advance(seconds=30)
    client.get("/api/v1/contacts/1", headers=headers)
    with nurture_app.sessions() as session:
        assert session.get_one(ApiKey, key_id).last_used_at == start
    frozen_clock.advance(seconds=31)
    client.get("/api/v1/contacts/1", headers=headers)
    with nurture_app.sessions() as session:
        assert session.get_one(ApiKey, key_id).last_used_at == frozen_clock()


def test_too_many_requests_are_429_with_retry_after(
    client: TestClient, reader: dict[str, str], frozen_clock: FrozenClock
) -> None:
    client.app.state.api_limiter.burst = 2  # type: ignore[attr-defined]  # Starlette's app is untyped here
    client.app.state.api_limiter.per_second = 0.5  # type: ignore[attr-defined]  # as above
    statuses = [client.get("/api/v1/contacts/1", headers=reader).status_code for _ in range(3)]
    assert statuses == [404, 404, 429]
    limited = client.get("/api/v1/contacts/1", headers=reader)
    assert_problem(limited, 429)
    assert limited.headers["Retry-After"] == "2"
    frozen_clock.advance(seconds=2)
    assert client.get("/api/v1/contacts/1", headers=reader).status_code == 404


def test_other_routes_keep_their_error_format(client: TestClient) -> None:
    response = client.post("/webhooks/booking", content=b"{}")
    assert response.headers["content-type"] == "application/json"
    assert "error" in response.json()


def test_the_openapi_schema_documents_the_api(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    post = paths["/api/v1/contacts"]["post"]
    assert "application/problem+json" in post["responses"]["422"]["content"]
    assert {"/api/v1/contacts/{contact_id}", "/api/v1/campaigns/{name}/funnel"} <= set(paths)


def test_a_write_that_loses_a_race_to_a_unique_row_runs_again_instead_of_failing(
    nurture_app: NurtureApp,
) -> None:
    """Two clients creating one new address at once: the second's INSERT meets the first's row
    (IntegrityError); run again, it finds that row (no 500), with or without an idempotency key."""
    from sqlalchemy.exc import IntegrityError

    from web.api.idempotency import run_once

    key_id, _ = make_key(nurture_app)
    for idempotency_key in (None, "race-1"):
        attempts: list[int] = []

        def work(session: Any, attempts: list[int] = attempts) -> tuple[int, dict[str, Any]]:
            attempts.append(1)
            if len(attempts) == 1:
                raise IntegrityError("INSERT INTO contacts", {}, Exception("UNIQUE constraint"))
            return 200, {"created": False}

        answer = run_once(nurture_app, key_id, idempotency_key, "fingerprint", work)
        assert (answer.status, answer.body, len(attempts)) == (200, {"created": False}, 2)
