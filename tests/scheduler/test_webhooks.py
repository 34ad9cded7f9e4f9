"""Outbound webhooks (scheduler.webhooks): signed with the documented recipe, retried with
backoff on the app's clock and given up after a day, made once however many workers tick,
only the kinds an endpoint asked for, and nothing that tells a health condition."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from campaigns.booking import mark_booked
from contacts.optout import opt_out
from core.errors import InputError
from nurture.app import NurtureApp
from scheduler.webhooks import BACKOFF, GIVE_UP_AFTER, Deliverer
from staff.webhook_endpoints import check_url, deactivate, queue_test, register
from storage.db import transaction
from storage.models import Campaign, Contact, Event, WebhookDelivery, WebhookEndpoint
from tests.scheduler.webhook_receiver import Receiver, receiver

PHONE = "+13105550123"


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as running:
        yield running


def _register(app: NurtureApp, url: str, *types: str) -> tuple[int, str]:
    with transaction(app.sessions) as session:
        made = register(
            session, url=url, event_types=list(types), created_by="test", at=app.clock(),
            allow_private=app.settings.webhooks.allow_private_addresses,
        )  # fmt: skip
        return made.id, made.secret


def _deliverer(app: NurtureApp, **options: Any) -> Deliverer:
    """The worker's deliverer: tests/conftest.py allows the receiver on 127.0.0.1."""
    return Deliverer(
        app.sessions, app.clock, allow_private=app.settings.webhooks.allow_private_addresses,
        **options,
    )  # fmt: skip


def _opt_out(app: NurtureApp, contact_id: int, channel: str = "sms") -> None:
    with transaction(app.sessions) as session:
        contact = session.get_one(Contact, contact_id)
        opt_out(session, contact, channel, reason="stop", source="test", at=app.clock())


def _deliveries(app: NurtureApp) -> list[WebhookDelivery]:
    with transaction(app.sessions, immediate=False) as session:
        rows = list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))
        session.expunge_all()
        return rows


def verify(secret: str, header: str, body: bytes, now: datetime) -> bool:
    """What a receiver does, from the README's recipe alone (no Nurture code)."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    t = int(fields["t"])
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return abs(now.timestamp() - t) <= 300 and hmac.compare_digest(expected, fields["sha256"])


def test_an_opt_out_reaches_the_endpoint_signed_with_its_secret(
    nurture_app: NurtureApp, make_contact: Any, hook: Receiver
) -> None:
    _, secret = _register(nurture_app, hook.url, "contact.opted_out")
    contact = make_contact(phone=PHONE, sms=True)
    _opt_out(nurture_app, contact)
    result = _deliverer(nurture_app).tick()
    assert (result.handed_out, result.delivered, result.failed) == (1, 1, 0)
    [got] = hook.requests
    assert got.path == "/hooks/nurture"
    assert verify(secret, got.headers["X-Nurture-Signature"], got.body, nurture_app.clock())
    assert not verify("whsec_another", got.headers["X-Nurture-Signature"], got.body,
                      nurture_app.clock())  # fmt: skip
    later = nurture_app.clock() + timedelta(minutes=10)  # a replay, ten minutes on
    assert not verify(secret, got.headers["X-Nurture-Signature"], got.body, later)
    payload = json.loads(got.body)
    assert payload["type"] == "contact.opted_out" and payload["id"].startswith("evt_")
    assert payload["contact"] == {"id": contact, "phone": PHONE}  # the phone, not the email
    assert payload["data"]["channel"] == "sms" and payload["data"]["reason"] == "stop"
    [delivery] = _deliveries(nurture_app)
    assert delivery.delivered_at == nurture_app.clock() and delivery.next_attempt_at is None
    assert (delivery.attempts, delivery.last_status_code) == (1, 200)
    with transaction(nurture_app.sessions, immediate=False) as session:
        endpoint = session.scalars(select(WebhookEndpoint)).one()
        assert endpoint.last_status == "delivered (HTTP 200)"
    assert _deliverer(nurture_app).tick().handed_out == 0
    assert len(hook.requests) == 1  # delivered once


def test_a_failing_receiver_is_retried_with_backoff_and_given_up_after_a_day(
    nurture_app: NurtureApp, make_contact: Any, hook: Receiver
) -> None:
    hook.status = 500
    _, secret = _register(nurture_app, hook.url, "contact.opted_out")
    _opt_out(nurture_app, make_contact(phone=PHONE, sms=True))
    deliverer = _deliverer(nurture_app)
    made_at = nurture_app.clock()
    deliverer.tick()
    [first] = _deliveries(nurture_app)
    assert (first.attempts, first.last_status_code) == (1, 500)
    assert first.next_attempt_at == made_at + timedelta(seconds=BACKOFF[0])
    deliverer.tick()  # not due yet: nothing posted
    assert len(hook.requests) == 1
    waits = []
    while True:
        [delivery] = _deliveries(nurture_app)
        if delivery.next_attempt_at is None:
            break
        waits.append(delivery.next_attempt_at - nurture_app.clock())
        nurture_app.clock.now = delivery.next_attempt_at
        deliverer.tick()
    assert waits[: len(BACKOFF)] == [timedelta(seconds=s) for s in BACKOFF]
    assert delivery.gave_up_at == made_at + GIVE_UP_AFTER and delivery.delivered_at is None
    assert len(hook.requests) == delivery.attempts > len(BACKOFF)
    assert all(  # each attempt signed afresh, at its own time
        verify(secret, r.headers["X-Nurture-Signature"], r.body,
               datetime.fromtimestamp(int(r.headers["X-Nurture-Signature"][2:12]), made_at.tzinfo))
        for r in hook.requests
    )  # fmt: skip
    with transaction(nurture_app.sessions, immediate=False) as session:
        endpoint = session.scalars(select(WebhookEndpoint)).one()
        assert endpoint.last_status is not None and endpoint.last_status.startswith("gave up")
    nurture_app.clock.advance(days=2)
    deliverer.tick()
    assert len(hook.requests) == delivery.attempts  # never again


def test_a_receiver_that_recovers_gets_the_event_on_the_next_retry(
    nurture_app: NurtureApp, make_contact: Any, hook: Receiver
) -> None:
    hook.status = 503
    _register(nurture_app, hook.url, "contact.opted_out")
    _opt_out(nurture_app, make_contact(phone=PHONE, sms=True))
    deliverer = _deliverer(nurture_app)
    deliverer.tick()
    hook.status = 204
    nurture_app.clock.advance(seconds=BACKOFF[0])
    deliverer.tick()
    [delivery] = _deliveries(nurture_app)
    assert delivery.delivered_at is not None and delivery.attempts == 2
    assert [json.loads(r.body)["id"] for r in hook.requests] == [f"evt_{delivery.event_id}"] * 2


def test_a_receiver_that_is_down_is_recorded_and_retried(
    nurture_app: NurtureApp, make_contact: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with receiver() as gone:
        url = gone.url  # its port, closed once the block ends
    _register(nurture_app, url, "contact.opted_out")
    _opt_out(nurture_app, make_contact(phone=PHONE, sms=True))
    with caplog.at_level("WARNING", logger="nurture.webhooks"):
        result = _deliverer(nurture_app, deadline=1).tick()
    assert result.failed == 1
    [delivery] = _deliveries(nurture_app)
    # Staff see a fixed phrase, not the exception (which tells an open port from a closed one).
    assert delivery.last_status_code is None and delivery.last_error == "could not connect"
    assert delivery.next_attempt_at == nurture_app.clock() + timedelta(seconds=BACKOFF[0])
    with transaction(nurture_app.sessions, immediate=False) as session:
        endpoint = session.scalars(select(WebhookEndpoint)).one()
        assert endpoint.last_status == "failing, retrying (could not connect)"
    assert "ConnectionRefusedError" in caplog.text and "127.0.0.1" in caplog.text
    assert "/hooks/nurture" not in caplog.text  # the host only: a path may hold a token


def test_an_endpoint_for_other_kinds_receives_nothing(
    nurture_app: NurtureApp, make_contact: Any, hook: Receiver
) -> None:
    _register(nurture_app, hook.url, "contact.booked", "message.clicked")
    _opt_out(nurture_app, make_contact(phone=PHONE, sms=True))
    assert _deliverer(nurture_app).tick().handed_out == 0
    assert hook.requests == [] and _deliveries(nurture_app) == []


def test_events_before_registration_and_to_a_deactivated_endpoint_are_not_sent(
    nurture_app: NurtureApp, make_contact: Any, hook: Receiver
) -> None:
    _opt_out(nurture_app, make_contact(phone=PHONE, sms=True))  # before the endpoint existed
    endpoint, _ = _register(nurture_app, hook.url, "contact.opted_out")
    deliverer = _deliverer(nurture_app)
    deliverer.tick()
    assert hook.requests == []
    with transaction(nurture_app.sessions) as session:
        assert deactivate(session, endpoint, at=nurture_app.clock()) is True
    _opt_out(nurture_app, make_contact(phone="+13105550124", sms=True))
    deliverer.tick()
    assert hook.requests == [] and _deliveries(nurture_app) == []


def test_two_workers_ticking_at_once_deliver_each_event_once(
    nurture_app: NurtureApp, make_contact: Any, hook: Receiver
) -> None:
    _register(nurture_app, hook.url, "contact.opted_out")
    for n in range(6):
        _opt_out(nurture_app, make_contact(phone=f"+1310555020{n}", sms=True))
    workers = [_deliverer(nurture_app) for _ in range(2)]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(deliverer: Deliverer) -> None:
        try:
            start.wait()
            deliverer.tick()
            deliverer.tick()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    ids = sorted(json.loads(r.body)["id"] for r in hook.requests)
    assert len(ids) == 6 and len(set(ids)) == 6
    assert len(_deliveries(nurture_app)) == 6


def test_an_event_committed_after_a_later_one_was_read_is_still_sent(
    nurture_app: NurtureApp, make_contact: Any, hook: Receiver
) -> None:
    """Ids are drawn at insert: a transaction may commit id 7 after id 8 was read."""
    _register(nurture_app, hook.url, "contact.opted_out")
    first, late = make_contact(phone=PHONE, sms=True), make_contact(email="late@example.com")
    _opt_out(nurture_app, first)
    _opt_out(nurture_app, late, "email")
    with transaction(nurture_app.sessions) as session:
        late_event = session.scalars(select(Event).where(Event.contact_id == late)).one()
        kept = {c.name: getattr(late_event, c.name) for c in Event.__table__.columns}
        session.delete(late_event)  # not yet committed, as far as the deliverer can tell
        if nurture_app.engine.dialect.name == "sqlite":
            # SQLite would hand the deleted top id out again (sqlite.org/autoinc.html); a
            # filler keeps it drawn, as PostgreSQL's sequence does.
            session.add(Event(id=kept["id"] + 1, kind="filler", occurred_at=nurture_app.clock()))
    _opt_out(nurture_app, make_contact(phone="+13105550125", sms=True))
    deliverer = _deliverer(nurture_app)
    deliverer.tick()
    assert len(hook.requests) == 2
    with transaction(nurture_app.sessions) as session:
        session.execute(insert(Event), [kept])  # its commit lands now, under the cursor
    deliverer.tick()
    assert len(hook.requests) == 3
    assert json.loads(hook.requests[-1].body)["contact"] == {
        "id": late,
        "email": "late@example.com",
    }


def test_the_payload_carries_no_health_details(
    nurture_app: NurtureApp, make_contact: Any, hook: Receiver
) -> None:
    _register(nurture_app, hook.url, "contact.booked", "contact.opted_out")
    contact = make_contact(email="pat@example.com", tags=("sciatica",), first_name="Patricia")
    with transaction(nurture_app.sessions) as session:
        person = session.get_one(Contact, contact)
        person.custom_fields = {"condition": "herniated disc"}
        session.add(Campaign(name="herniated-disc-relief", definition={}, state="active"))
        exited = ["herniated-disc-relief"]
        data = {"source": "x", "first": True, "exited": exited}
        session.add(Event(kind="booked", occurred_at=nurture_app.clock(), contact_id=contact,
                          data=data))  # fmt: skip
    _opt_out(nurture_app, contact, "email")
    _deliverer(nurture_app).tick()
    assert len(hook.requests) == 2
    for request in hook.requests:
        text = request.body.decode()
        for secret in ("sciatica", "herniated", "disc", "Patricia", "Tester", "condition"):
            assert secret not in text
    [booked] = [b for b in map(json.loads, (r.body for r in hook.requests))
                if b["type"] == "contact.booked"]  # fmt: skip
    assert booked["type"] == "contact.booked" and booked["data"] == {"first": True}
    assert booked["contact"] == {"id": contact, "email": "pat@example.com"}


def test_a_forgotten_person_is_sent_by_id_only(
    nurture_app: NurtureApp, make_contact: Any, hook: Receiver
) -> None:
    _register(nurture_app, hook.url, "contact.opted_out")
    contact = make_contact(phone=PHONE, sms=True)
    _opt_out(nurture_app, contact)
    with transaction(nurture_app.sessions) as session:
        person = session.get_one(Contact, contact)
        person.phone, person.email = None, None  # what contacts.forget leaves
    _deliverer(nurture_app).tick()
    assert json.loads(hook.requests[0].body)["contact"] == {"id": contact}


def test_a_test_event_is_posted_on_the_next_tick(nurture_app: NurtureApp) -> None:
    with receiver() as hook:
        endpoint, secret = _register(nurture_app, hook.url, "contact.opted_out")
        with transaction(nurture_app.sessions) as session:
            queue_test(session, endpoint, at=nurture_app.clock())
        _deliverer(nurture_app).tick()
        [got] = hook.requests
    assert json.loads(got.body)["type"] == "webhook.test"
    assert got.headers["X-Nurture-Event"] == "webhook.test"
    assert verify(secret, got.headers["X-Nurture-Signature"], got.body, nurture_app.clock())


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://crm.example.com/hook", "https://"),
        ("https://user:pw@crm.example.com/hook", "user name or password"),
        ("http://crm.example.com/hook", "use https"),
        ("http://localhost:6379/", "use https"),
        ("http://127.0.0.2:8000/admin/", "use https"),
        ("https://localhost:6379/", "public address"),
        ("https://redis.localhost/", "public address"),
        ("https://127.0.0.2:8000/admin/", "public address"),
        ("https://169.254.169.254/latest/meta-data/", "public address"),
        ("https://10.0.0.5/", "public address"),
        ("https://192.168.1.20/", "public address"),
        ("https://100.64.0.1/", "public address"),
        ("https://0.0.0.0/", "public address"),
        ("https://[::1]:9200/", "public address"),
        ("https://[::ffff:127.0.0.1]/", "public address"),
        ("https://[64:ff9b::a9fe:a9fe]/", "public address"),
        ("https://[2002:a00:5::1]/", "public address"),
        ("https://[fe80::1]/", "public address"),
        ("https://224.0.0.251/", "public address"),
        ("https://crm.example.com/a b", "spaces"),
        ("https:///hook", "https://"),
        ("https://crm.example.com:99999/hook", "port"),
        ("", "1 to"),
    ],
)
def test_urls_that_are_refused(url: str, why: str) -> None:
    """SSRF: an editor's URL must not reach this machine, a private network or the cloud's
    metadata service; only https (deliveries carry addresses and phone numbers)."""
    with pytest.raises(InputError, match=why):
        check_url(url)


def test_urls_that_are_accepted() -> None:
    for url in ("https://crm.example.com/hook?x=1", "https://93.184.215.14:8443/h"):
        assert check_url(url) == url


def test_this_machine_over_http_is_accepted_only_where_the_setting_allows_it() -> None:
    """[webhooks] allow_private_addresses: tests and local development."""
    for url in ("http://127.0.0.1:9000/", "http://localhost/h", "https://10.0.0.5/"):
        assert check_url(url, allow_private=True) == url
        with pytest.raises(InputError):
            check_url(url)


def test_an_unknown_or_missing_event_type_is_refused(nurture_app: NurtureApp) -> None:
    with transaction(nurture_app.sessions) as session, pytest.raises(InputError, match="unknown"):
        register(session, url="https://crm.example.com/h", event_types=["contact.deleted"],
                 created_by="t", at=nurture_app.clock())  # fmt: skip
    with transaction(nurture_app.sessions) as session, pytest.raises(InputError, match="at least"):
        register(session, url="https://crm.example.com/h", event_types=[], created_by="t",
                 at=nurture_app.clock())  # fmt: skip


def test_a_booking_through_the_one_booking_rule_is_delivered(
    nurture_app: NurtureApp, make_contact: Any, hook: Receiver
) -> None:
    _register(nurture_app, hook.url, "contact.booked")
    contact = make_contact(email="pat@example.com", phone=PHONE)
    with transaction(nurture_app.sessions) as session:
        mark_booked(session, session.get_one(Contact, contact), at=nurture_app.clock(),
                    source="test", reference="B-1",
                    appointment_at=nurture_app.clock() + timedelta(days=3))  # fmt: skip
    _deliverer(nurture_app).tick()
    payload = json.loads(hook.requests[0].body)
    assert payload["contact"] == {"id": contact, "email": "pat@example.com", "phone": PHONE}
    visit = datetime.fromisoformat(payload["data"]["appointment_at"])
    assert visit == nurture_app.clock() + timedelta(days=3)
    assert payload["data"]["first"] is True


def test_the_cli_lists_endpoints_with_their_deliveries(
    nurture_app: NurtureApp, make_contact: Any, hook: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from nurture.cli.main import app as cli

    _register(nurture_app, hook.url, "contact.opted_out")
    _opt_out(nurture_app, make_contact(phone=PHONE, sms=True))
    _deliverer(nurture_app).tick()
    monkeypatch.setenv("NURTURE_DATABASE__URL", nurture_app.settings.database.url)
    result = CliRunner().invoke(cli, ["webhooks", "list"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert hook.url in result.output and "contact.opted_out" in result.output
    assert "delivered (HTTP 200)" in result.output
    assert PHONE not in result.output


def test_a_tick_with_nothing_to_hand_out_takes_no_write_lock(
    sqlite_app: NurtureApp, hook: Receiver
) -> None:
    """SQLite has one write lock, which sending and clicks need: an idle tick only reads."""
    import sqlite3
    import time

    _register(sqlite_app, hook.url, "contact.opted_out")
    deliverer = _deliverer(sqlite_app)
    deliverer.tick()
    path = sqlite_app.engine.url.database
    assert path
    holder = sqlite3.connect(path, timeout=0)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process is writing
        started = time.monotonic()
        assert deliverer.tick().handed_out == 0
        assert time.monotonic() - started < 5  # it never waited for the lock (busy: 30 s)
    finally:
        holder.rollback()
        holder.close()


def test_finished_deliveries_are_pruned_after_a_month_but_never_resent(
    nurture_app: NurtureApp, make_contact: Any, hook: Receiver
) -> None:
    from sqlalchemy import update

    from scheduler.webhooks import KEEP_FINISHED, REWIND

    endpoint, _ = _register(nurture_app, hook.url, "contact.opted_out")
    _opt_out(nurture_app, make_contact(phone=PHONE, sms=True))
    with transaction(nurture_app.sessions) as session:
        queue_test(session, endpoint, at=nurture_app.clock())
    deliverer = _deliverer(nurture_app)
    deliverer.tick()
    assert len(hook.requests) == 2 and len(_deliveries(nurture_app)) == 2
    nurture_app.clock.advance(days=1)
    assert deliverer.prune(nurture_app.clock()) == 0  # kept for the dashboard
    nurture_app.clock.advance(seconds=KEEP_FINISHED.total_seconds())
    assert deliverer.prune(nurture_app.clock()) == 1  # the test; the event is still looked back on
    [kept] = _deliveries(nurture_app)
    assert kept.event_id is not None
    with transaction(nurture_app.sessions) as session:
        session.execute(
            update(WebhookEndpoint).values(cursor_event_id=kept.event_id + REWIND)
        )  # many events later
    assert deliverer.prune(nurture_app.clock()) == 1
    deliverer.tick()
    assert len(hook.requests) == 2 and _deliveries(nurture_app) == []  # not sent again
