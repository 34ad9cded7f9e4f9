"""/metrics: Prometheus text that prometheus-client's own parser reads, computed from the
database at scrape time, for staff or a scraper with NURTURE_METRICS_TOKEN only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from campaigns import lifecycle
from campaigns.definitions import load_sequence
from contacts.consent import record_consent
from core.clock import FrozenClock
from nurture.app import NurtureApp
from scheduler.heartbeat import Heartbeat
from storage.db import transaction
from storage.models import Contact, Event, Message
from web.app import create_app
from web.metrics import error_code

TOKEN = "scraper-token-0123456789abcdefghij"


@pytest.fixture(autouse=True)
def metrics_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NURTURE_METRICS_TOKEN", TOKEN)


def _seed(app: NurtureApp, clock: FrozenClock) -> None:
    """Three due emails: one failed at send (Twilio-style code), one undelivered, one waiting
    90 s; three webhook events (two in the last hour); one worker alive."""
    with transaction(app.sessions) as session:
        for n in range(3):
            contact = Contact(
                first_name="Ana", last_name=f"T{n}", email=f"ana{n}@example.com", timezone="UTC"
            )
            session.add(contact)
            session.flush()
            contact.add_tags(["demo"])
            record_consent(
                session,
                contact.id,
                "email",
                "opted_in",
                source="t",
                evidence="form",
                occurred_at=clock(),
            )
        lifecycle.launch(session, load_sequence("demo"), now=clock(), settings=app.settings)
    app.planner.tick()
    now = clock()
    with transaction(app.sessions) as session:
        ids = sorted(session.scalars(select(Message.id)))
        assert len(ids) == 3
        session.execute(
            update(Message)
            .where(Message.id == ids[0])
            .values(state="failed", provider="sendgrid", error="sendgrid: bad (code 400)")
        )
        session.execute(
            update(Message)
            .where(Message.id == ids[1])
            .values(state="undelivered", provider="sendgrid", error="bounce 550 ana1@example.com")
        )
        for kind, minutes in (("delivered", 10), ("delivered", 50), ("bounce", 90)):
            session.add(
                Event(kind=kind, provider="sendgrid", occurred_at=now - timedelta(minutes=minutes))
            )
        session.add(Event(kind="click", occurred_at=now))  # ours, not a provider's webhook
        # Two sent in the last hour, 10 s and 70 s after they were due; one two hours ago.
        sent = [(20, 10), (40, 70), (150, 5)]
        for offset, (minutes_ago, late) in enumerate(sent):
            at = now - timedelta(minutes=minutes_ago)
            session.add(
                Message(
                    enrollment_id=session.scalars(select(Message.enrollment_id)).first(),
                    campaign_id=session.scalars(select(Message.campaign_id)).first(),
                    contact_id=session.scalars(select(Message.contact_id)).first(),
                    step_index=10 + offset,
                    channel="sms",
                    state="sent",
                    due_at=at - timedelta(seconds=late),
                    sent_at=at,
                    updated_at=at,
                )
            )
    clock.advance(seconds=90)
    Heartbeat(app.sessions, clock, worker="w-1", channels=["email"], stale_seconds=45).beat()


@pytest.fixture
def scraped(nurture_app: NurtureApp, frozen_clock: FrozenClock) -> Iterator[TestClient]:
    """Seeded, on SQLite and on PostgreSQL."""
    _seed(nurture_app, frozen_clock)
    with TestClient(create_app(nurture_app), follow_redirects=False) as client:
        yield client


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_scraper_with_the_token_reads_the_engine_state(scraped: TestClient) -> None:
    reply = scraped.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    samples = _samples(reply.text)
    assert samples[("nurture_messages", (("channel", "email"), ("state", "failed")))] == 1
    assert samples[("nurture_messages", (("channel", "email"), ("state", "undelivered")))] == 1
    assert samples[("nurture_messages", (("channel", "email"), ("state", "planned")))] == 1
    assert samples[("nurture_queue_due_messages", ())] == 1
    assert samples[("nurture_queue_oldest_due_age_seconds", ())] == 90
    assert samples[("nurture_provider_errors", (("code", "400"), ("provider", "sendgrid")))] == 1
    assert samples[("nurture_provider_errors", (("code", "550"), ("provider", "sendgrid")))] == 1
    events = (("kind", "delivered"), ("provider", "sendgrid"))
    assert samples[("nurture_webhook_events_last_hour", events)] == 2
    assert not any(
        name == "nurture_webhook_events_last_hour" and ("kind", "bounce") in labels
        for name, labels in samples
    )
    assert samples[("nurture_workers_alive", ())] == 1
    delay = "nurture_send_delay_seconds"
    assert samples[(delay, (("channel", "sms"), ("quantile", "0.5")))] == 10
    assert samples[(delay, (("channel", "sms"), ("quantile", "0.99")))] == 70
    assert not any(name == delay and ("channel", "email") in labels for name, labels in samples)
    assert "@" not in reply.text  # an error text's address never becomes a label


def test_anonymous_and_wrong_token_requests_are_refused(scraped: TestClient) -> None:
    assert scraped.get("/metrics").status_code == 401
    assert scraped.get("/admin/metrics").status_code == 401
    wrong = scraped.get("/metrics", headers={"Authorization": "Bearer scraper-token-wrong"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert "nurture_messages" not in wrong.text


def test_signed_in_staff_read_it_under_admin(viewer: TestClient) -> None:
    """The session cookie is scoped to /admin, so a browser reads /admin/metrics."""
    reply = viewer.get("/admin/metrics")
    assert reply.status_code == 200
    assert _samples(reply.text)[("nurture_workers_alive", ())] == 0


@pytest.mark.parametrize(
    ("error", "code"),
    [
        ("twilio: replied STOP (code 21610)", "21610"),
        ("gave up after 6 attempts: sendgrid: busy (code 429)", "429"),
        ("undelivered 30003 Unreachable destination handset", "30003"),
        ("the outbox folder is full", "none"),
        (None, "none"),
    ],
)
def test_error_codes_come_from_the_stored_text(error: str | None, code: str) -> None:
    assert error_code(error) == code
