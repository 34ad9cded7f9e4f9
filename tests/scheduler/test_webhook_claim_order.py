"""Outbound webhooks are claimed most urgent first (storage.models.delivery_urgency): an opt-out,
then other contact events and staff's test events, then message events. The urgency is stored
with each delivery (migration 0018) and the claim reads it off an index: no sort of every due
row (about 200 ms a claim at 100,000 due, before)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, select, text

from nurture.app import NurtureApp
from scheduler.webhooks import POST_BATCH, Deliverer
from staff.webhook_endpoints import EVENT_TYPES, TEST_TYPE, deactivate, queue_test, register
from storage.db import transaction, upgrade
from storage.models import Contact, Event, WebhookDelivery, delivery_urgency
from tests.scheduler.webhook_receiver import receiver

TYPES = ["contact.opted_out", "contact.booked", "message.clicked"]


def _events(app: NurtureApp, kinds: list[str]) -> None:
    """The events, about a new contact each call."""
    with transaction(app.sessions) as session:
        number = len(session.scalars(select(Contact.id)).all())
        contact = Contact(
            first_name="Ana", last_name="Ruiz", email=f"ana{number}@example.com",
            timezone="America/Los_Angeles", created_at=app.clock(), updated_at=app.clock(),
        )  # fmt: skip
        session.add(contact)
        session.flush()
        for kind in kinds:
            session.add(Event(kind=kind, occurred_at=app.clock(), contact_id=contact.id))


def _deliverer(app: NurtureApp) -> Deliverer:
    return Deliverer(
        app.sessions, app.clock, allow_private=app.settings.webhooks.allow_private_addresses
    )


def test_each_delivery_stores_its_urgency(nurture_app: NurtureApp) -> None:
    with receiver() as hook, transaction(nurture_app.sessions) as session:
        endpoint = register(
            session, url=hook.url, event_types=TYPES, created_by="t", at=nurture_app.clock(),
            allow_private=True,
        ).id  # fmt: skip
        queue_test(session, endpoint, at=nurture_app.clock())
    _events(nurture_app, ["clicked", "booked", "unsubscribed"])
    assert _deliverer(nurture_app).hand_out() == 3
    with transaction(nurture_app.sessions, immediate=False) as session:
        stored = {
            kind: urgency
            for kind, urgency in session.execute(
                select(WebhookDelivery.event_type, WebhookDelivery.urgency)
            )
        }
    assert stored == {
        "webhook.test": 1,
        "message.clicked": 2,
        "contact.booked": 1,
        "contact.opted_out": 0,
    }
    assert all(delivery_urgency(kind) == urgency for kind, urgency in stored.items())


def test_a_claim_takes_the_urgent_before_older_message_events(nurture_app: NurtureApp) -> None:
    """More due than one claim takes: the opt-out and the booking go in the first batch although
    every click is older."""
    with receiver() as hook:
        with transaction(nurture_app.sessions) as session:
            register(
                session, url=hook.url, event_types=TYPES, created_by="t",
                at=nurture_app.clock(), allow_private=True,
            )  # fmt: skip
        _events(nurture_app, ["clicked"] * (POST_BATCH + 5) + ["booked", "unsubscribed"])
        deliverer = _deliverer(nurture_app)
        deliverer.hand_out()
        statements: list[tuple[str, Any]] = []

        def seen(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
            if "ORDER BY webhook_deliveries.urgency" in statement:
                statements.append((statement, params))

        event.listen(nurture_app.engine, "before_cursor_execute", seen)
        try:
            outcomes = deliverer.deliver_due()  # one claim
        finally:
            event.remove(nurture_app.engine, "before_cursor_execute", seen)
        posted = [json.loads(request.body)["type"] for request in hook.requests]
    assert len(outcomes) == POST_BATCH
    assert {"contact.opted_out", "contact.booked"} <= set(posted)
    assert posted.count("message.clicked") == POST_BATCH - 2
    [(claim, params)] = statements
    if nurture_app.engine.dialect.name == "sqlite":
        with nurture_app.engine.connect() as connection:
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {claim}", params).all()
        steps = " | ".join(str(row[-1]) for row in plan)
        assert "ix_webhook_delivery_claim" in steps and "TEMP B-TREE" not in steps, steps


def test_migration_0018_gives_existing_deliveries_their_urgency(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'before.db'}"
    upgrade(url, "0017")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO webhook_endpoints (id, url, secret, secret_prefix, event_types,"
                " active, created_at, created_by, cursor_event_id, after_event_id) VALUES (1,"
                " 'https://crm.test/h', 's', 'whsec_', '[]', 1, '2026-12-01 00:00:00', 't', 0, 0)"
            )
        )
        for kind in ("contact.opted_out", "contact.no_show", "webhook.test", "message.bounced"):
            connection.execute(
                text(
                    "INSERT INTO webhook_deliveries (endpoint_id, event_type, created_at, attempts,"
                    " next_attempt_at) VALUES (1, :kind, '2026-12-01 00:00:00', 0,"
                    " '2026-12-01 00:00:00')"
                ),
                {"kind": kind},
            )
    engine.dispose()
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as connection:
        found = connection.execute(text("SELECT event_type, urgency FROM webhook_deliveries"))
        rows = {kind: urgency for kind, urgency in found}
    engine.dispose()
    assert rows == {kind: delivery_urgency(kind) for kind in rows}
    assert rows == {
        "contact.opted_out": 0,
        "contact.no_show": 1,
        "webhook.test": 1,
        "message.bounced": 2,
    }


def test_every_public_event_type_has_its_urgency() -> None:
    """The public types (staff.webhook_endpoints) and the claim's order (storage.models) name
    the same events: opt-outs first, then the other contact events and tests, then messages."""
    assert {kind: delivery_urgency(kind) for kind in [*EVENT_TYPES, TEST_TYPE]} == {
        "contact.opted_out": 0,
        "contact.opted_in": 1,
        "contact.booked": 1,
        "contact.cancelled": 1,
        "contact.no_show": 1,
        "contact.attended": 1,
        "webhook.test": 1,
        "message.clicked": 2,
        "message.delivered": 2,
        "message.bounced": 2,
    }


def test_deactivating_an_endpoint_gives_up_what_waits_for_it(nurture_app: NurtureApp) -> None:
    """Its waiting deliveries end (given up, saying why) instead of staying due for every claim
    to walk past; what was delivered stays as it was."""
    with receiver() as hook:
        with transaction(nurture_app.sessions) as session:
            endpoint = register(
                session, url=hook.url, event_types=TYPES, created_by="t",
                at=nurture_app.clock(), allow_private=True,
            ).id  # fmt: skip
        _events(nurture_app, ["unsubscribed"])
        deliverer = _deliverer(nurture_app)
        deliverer.tick()
        assert len(hook.requests) == 1
        _events(nurture_app, ["clicked", "booked"])
        deliverer.hand_out()
        with transaction(nurture_app.sessions) as session:
            assert deactivate(session, endpoint, at=nurture_app.clock()) is True
            assert deactivate(session, endpoint, at=nurture_app.clock()) is False
        deliverer.tick()
        assert len(hook.requests) == 1
    with transaction(nurture_app.sessions, immediate=False) as session:
        rows = session.execute(
            select(
                WebhookDelivery.event_type,
                WebhookDelivery.next_attempt_at,
                WebhookDelivery.delivered_at.is_not(None),
                WebhookDelivery.gave_up_at,
                WebhookDelivery.last_error,
            ).order_by(WebhookDelivery.id)
        ).all()
    now = nurture_app.clock().replace(tzinfo=None)
    assert [(kind, due, done) for kind, due, done, _, _ in rows] == [
        ("contact.opted_out", None, True),
        ("message.clicked", None, False),
        ("contact.booked", None, False),
    ]
    assert [(gave_up and gave_up.replace(tzinfo=None), why) for *_, gave_up, why in rows[1:]] == [
        (now, "endpoint deactivated"),
        (now, "endpoint deactivated"),
    ]
