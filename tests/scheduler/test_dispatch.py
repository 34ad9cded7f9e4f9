"""The dispatcher through the real SendGrid and Twilio channels against the loopback fake, on
SQLite and PostgreSQL: sends once, re-checks at send time, and classifies provider errors."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from campaigns import lifecycle
from contacts.suppressions import is_suppressed, suppress
from core.clock import FrozenClock
from nurture.app import NurtureApp
from providers.fakeserver import Received, RunningFake
from storage.db import transaction
from storage.models import Contact, Message, MessageState, SuppressionReason

NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)  # 10:00 in Los Angeles


def test_each_due_message_is_sent_once_with_its_payload(
    h: Any, provider_app: Callable[..., NurtureApp], fake: RunningFake
) -> None:
    app = provider_app()
    ids = h.seed(app, emails=30, texts=30, due=NOW)
    result = app.dispatcher.tick()
    assert result.sent == 60 and result.claimed == 60
    assert sorted(fake.fake.ids()) == sorted(ids)
    rows = h.message_rows(app)
    assert {row.state for row in rows.values()} == {MessageState.SENT}
    texts = [row for row in rows.values() if row.channel == "sms"]
    assert all(row.provider == "twilio" and row.provider_message_id for row in texts)
    assert all(row.segments and row.segments >= 1 for row in texts)
    assert all(row.attempts == 1 for row in rows.values())
    assert {row.sent_at for row in rows.values()} == {NOW}  # stored and read back as aware UTC
    # A second tick has nothing left to send.
    assert app.dispatcher.tick().claimed == 0
    assert len(fake.fake.ids()) == 60


def test_transient_errors_retry_until_each_message_is_sent_exactly_once(
    h: Any, provider_app: Callable[..., NurtureApp], fake: RunningFake, frozen_clock: FrozenClock
) -> None:
    chance = random.Random(7)

    def flaky(kind: str, message_id: int, to: str, seen: int) -> tuple[int, dict] | None:
        roll = chance.random()
        if roll < 0.2:
            return 500, {"message": "internal error"}
        if roll < 0.4:
            return 429, {"code": 20429, "message": "Too Many Requests"}
        return None

    fake.fake.rule = flaky
    app = provider_app(scheduler={"max_attempts": 50, "retry_base_seconds": 1})
    ids = h.seed(app, emails=40, texts=40, due=NOW)
    retried = 0
    for _ in range(60):
        result = app.dispatcher.tick()
        retried += result.retried
        if set(h.states(app).values()) == {MessageState.SENT}:
            break
        frozen_clock.advance(hours=1)  # past any backoff
    assert retried > 0
    assert set(h.states(app).values()) == {MessageState.SENT}
    assert Counter(fake.fake.ids()) == Counter(ids)  # every message accepted exactly once


def test_permanent_errors_fail_with_the_reason_and_are_never_retried(
    h: Any, provider_app: Callable[..., NurtureApp], fake: RunningFake, frozen_clock: FrozenClock
) -> None:
    app = provider_app()
    ids = h.seed(app, emails=2, texts=3, due=NOW)
    email_bad, email_ok, opted_out, invalid, fine = ids
    with transaction(app.sessions) as session:
        opted_out_phone = session.scalars(
            select(Contact.phone).join(Message).where(Message.id == opted_out)
        ).one()
    answers = {
        ("email", email_bad): (400, {"errors": [{"message": "Invalid to email", "field": "to"}]}),
        ("sms", opted_out): (400, {"code": 21610, "message": "Attempt to send to unsubscribed"}),
        ("sms", invalid): (400, {"code": 21211, "message": "Invalid 'To' Phone Number"}),
    }
    fake.fake.rule = lambda kind, message_id, to, seen: answers.get((kind, message_id))
    result = app.dispatcher.tick()
    assert (result.sent, result.failed, result.retried) == (2, 3, 0)
    rows = h.message_rows(app)
    assert rows[email_bad].state == MessageState.FAILED
    assert "Invalid to email" in (rows[email_bad].error or "")
    assert "21610" in (rows[opted_out].error or "") and "21211" in (rows[invalid].error or "")
    assert rows[email_ok].state == rows[fine].state == MessageState.SENT
    with transaction(app.sessions) as session:
        assert is_suppressed(session, "sms", opted_out_phone)  # 21610 also suppresses
    frozen_clock.advance(days=1)
    assert app.dispatcher.tick().claimed == 0
    assert sorted(fake.fake.ids()) == sorted([email_ok, fine])


def test_no_answer_after_the_request_left_is_uncertain_not_retried(
    h: Any, provider_app: Callable[..., NurtureApp], fake: RunningFake, frozen_clock: FrozenClock
) -> None:
    fake.fake.delay = 2.0
    app = provider_app(sendgrid={"concurrency": 4})
    app.dispatcher.email.pool.timeout = 0.3  # seconds: the answer is late
    [message] = h.seed(app, emails=1, due=NOW)
    result = app.dispatcher.tick()
    assert result.uncertain == 1 and result.retried == 0
    assert h.states(app)[message] == MessageState.UNCERTAIN
    frozen_clock.advance(days=1)
    assert app.dispatcher.tick().claimed == 0


def on_first_request(action: Callable[[], None]) -> Callable[[Received], None]:
    """A fake provider hook that runs `action` at its first request: mid-batch, while the
    first sub-batch is on the wire."""
    done: list[bool] = []

    def hook(item: Received) -> None:
        if not done:
            done.append(True)
            action()

    return hook


def test_unsubscribe_committed_mid_batch_stops_every_unsent_message_to_that_contact(
    h: Any, provider_app: Callable[..., NurtureApp], fake: RunningFake
) -> None:
    app = provider_app(sendgrid={"concurrency": 2}, twilio={"concurrency": 2})
    people = h.seed(app, emails=40, due=NOW)  # message ids 1..40 for contacts 1..40
    # The same contacts also have texts due, later in the same batch.
    with transaction(app.sessions) as session:
        contacts = list(session.scalars(select(Contact).order_by(Contact.id)))
    leaver = contacts[-1]
    h.seed(app, texts=40, due=NOW, contacts=[c.id for c in contacts])
    leaver_email, leaver_phone = leaver.email, leaver.phone

    def unsubscribe() -> None:
        with transaction(app.sessions) as session:
            suppress(session, "email", leaver_email, SuppressionReason.UNSUBSCRIBED, at=app.clock())
            suppress(session, "sms", leaver_phone, SuppressionReason.UNSUBSCRIBED, at=app.clock())

    fake.fake.on_request = on_first_request(unsubscribe)
    result = app.dispatcher.tick()
    received_to = [item.to for item in fake.fake.received]
    assert leaver_email not in received_to and leaver_phone not in received_to
    assert result.sent == 78 and result.skipped == 2
    assert len(people) == 40


@pytest.mark.parametrize("in_child", [True, False])
def test_unqueued_an_unsubscribe_stops_even_the_very_next_sub_batch(
    h: Any, provider_app: Callable[..., NurtureApp], fake: RunningFake, in_child: bool
) -> None:
    """`queue_checked_sub_batches = false`: a sub-batch is re-checked only once every call of
    the one before it has begun, so an unsubscribe committed while the first is on the wire
    stops a message of the second (queued, that one may already be on its way)."""
    app = provider_app(
        sendgrid={"concurrency": 2},  # sub-batches of 8
        scheduler={"queue_checked_sub_batches": False, "sender_process": in_child},
    )
    ids = h.seed(app, emails=24, due=NOW)
    leaver = ids[9]  # in the second sub-batch
    with transaction(app.sessions) as session:
        leaver_email = session.scalars(
            select(Contact.email).join(Message).where(Message.id == leaver)
        ).one()

    def unsubscribe() -> None:
        with transaction(app.sessions) as session:
            suppress(session, "email", leaver_email, SuppressionReason.UNSUBSCRIBED, at=app.clock())

    fake.fake.on_request = on_first_request(unsubscribe)
    result = app.dispatcher.tick()
    assert leaver not in fake.fake.ids()
    assert sorted(fake.fake.ids()) == sorted(set(ids) - {leaver})
    assert (result.sent, result.skipped) == (23, 1)
    assert h.message_rows(app)[leaver].state == MessageState.SKIPPED


def test_pause_mid_batch_stops_new_sends_and_resume_never_resends(
    h: Any, provider_app: Callable[..., NurtureApp], fake: RunningFake
) -> None:
    app = provider_app(sendgrid={"concurrency": 2})
    ids = h.seed(app, emails=40, due=NOW)

    def pause() -> None:
        with transaction(app.sessions) as session:
            lifecycle.pause(session, "engine-email", now=NOW)

    fake.fake.on_request = on_first_request(pause)
    first = app.dispatcher.tick()
    sent_before = set(fake.fake.ids())
    assert 0 < first.sent < 40 and first.released == 40 - first.sent
    assert app.dispatcher.tick().sent == 0  # still paused
    fake.fake.on_request = None
    with transaction(app.sessions) as session:
        lifecycle.resume(session, "engine-email")
    second = app.dispatcher.tick()
    assert second.sent == 40 - first.sent
    assert Counter(fake.fake.ids()) == Counter(ids)
    assert sent_before.isdisjoint(set(fake.fake.ids()[len(sent_before) :]))


def test_a_late_tick_does_not_text_at_night_and_defers_to_the_morning(
    h: Any, provider_app: Callable[..., NurtureApp], fake: RunningFake, frozen_clock: FrozenClock
) -> None:
    late = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)  # 23:00 in Los Angeles
    frozen_clock.now = late
    app = provider_app()
    [text] = h.seed(app, texts=1, due=late - timedelta(hours=2))
    [email] = h.seed(app, emails=1, due=late - timedelta(hours=2))
    result = app.dispatcher.tick()
    assert result.deferred == 1 and result.sent == 1
    rows = h.message_rows(app)
    assert rows[text].state == MessageState.PLANNED
    assert rows[text].due_at == datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # 08:00 local
    assert rows[email].state == MessageState.SENT  # the email step's window is all day
    assert fake.fake.ids("sms") == []


def test_one_text_per_contact_per_cap_window_across_campaigns(
    h: Any, provider_app: Callable[..., NurtureApp], fake: RunningFake, frozen_clock: FrozenClock
) -> None:
    app = provider_app()
    [first] = h.seed(app, texts=1, due=NOW, campaign="engine-sms")
    [second] = h.seed(app, texts=1, due=NOW, contacts=[1], campaign="engine-sms-2")
    result = app.dispatcher.tick()
    assert (result.sent, result.deferred) == (1, 1)
    rows = h.message_rows(app)
    assert rows[first].state == MessageState.SENT
    assert rows[second].due_at >= NOW + timedelta(hours=24)
    frozen_clock.advance(hours=24, minutes=1)
    assert app.dispatcher.tick().sent == 1
    assert sorted(fake.fake.ids("sms")) == [first, second]


def test_too_late_messages_are_skipped_with_a_reason(
    h: Any, provider_app: Callable[..., NurtureApp], fake: RunningFake
) -> None:
    app = provider_app()
    [old] = h.seed(app, emails=1, due=NOW - timedelta(days=3))  # not_after = due + 48 h
    assert app.dispatcher.tick().skipped == 1
    row = h.message_rows(app)[old]
    assert row.state == MessageState.SKIPPED and "too late" in (row.skip_reason or "")
    assert fake.fake.ids() == []


def test_booked_contact_exits_and_cancelled_campaign_skips(
    h: Any, provider_app: Callable[..., NurtureApp], fake: RunningFake
) -> None:
    app = provider_app()
    booked, other = h.seed(app, emails=2, due=NOW)
    [text] = h.seed(app, texts=1, due=NOW, contacts=[2])
    with transaction(app.sessions) as session:
        session.get_one(Contact, 1).booked_at = NOW
        lifecycle.cancel(session, "engine-sms", now=NOW)
    result = app.dispatcher.tick()
    rows = h.message_rows(app)
    assert rows[booked].skip_reason == "exited: booked"
    assert rows[other].state == MessageState.SENT
    assert rows[text].skip_reason == "campaign cancelled"
    assert result.sent == 1 and fake.fake.ids() == [other]


def test_a_paused_campaign_is_not_claimed_at_all(
    h: Any, provider_app: Callable[..., NurtureApp], fake: RunningFake
) -> None:
    app = provider_app(scheduler={"batch_size": 10})
    h.seed(app, emails=25, due=NOW)
    with transaction(app.sessions) as session:
        lifecycle.pause(session, "engine-email", now=NOW)
    result = app.dispatcher.tick()  # returns: nothing is claimed, nothing churns
    assert (result.claimed, result.sent) == (0, 0)
    assert set(h.states(app).values()) == {MessageState.PLANNED}
    assert fake.fake.ids() == []


def test_a_status_callback_that_beats_the_record_keeps_its_state(
    h: Any, provider_app: Callable[..., NurtureApp], fake: RunningFake
) -> None:
    """Twilio may report "delivered" before the dispatcher records "sent": states only move
    forward, and the record still adds the provider's id and the send time."""
    app = provider_app()
    [text] = h.seed(app, texts=1, due=NOW)

    def deliver_first(item: Received) -> None:
        with transaction(app.sessions) as session:
            message = session.get_one(Message, item.message_id)
            message.state, message.provider_status = MessageState.DELIVERED, "delivered"

    fake.fake.on_request = deliver_first
    assert app.dispatcher.tick().claimed == 1
    row = h.message_rows(app)[text]
    assert row.state == MessageState.DELIVERED and row.provider_status == "delivered"
    assert row.provider_message_id and row.sent_at == NOW


def test_a_message_that_cannot_render_fails_with_the_reason_and_the_rest_go_out(
    h: Any, provider_app: Callable[..., NurtureApp], fake: RunningFake
) -> None:
    """Rendering happens after the claim commits: on SQLite the write lock is free meanwhile
    (the web server's unsubscribes must not wait for a batch to render)."""
    import sqlite3

    from templates.renderer import TemplateRenderError

    app = provider_app()
    ids = h.seed(app, emails=3, texts=2, due=NOW)
    broken = ids[1]
    real = app.dispatcher.composer
    database = app.engine.url.database if app.engine.dialect.name == "sqlite" else None
    lock_free: list[bool] = []

    class Breaking:
        def compose(self, *args: Any, **kwargs: Any) -> Any:
            if database:
                other = sqlite3.connect(database, timeout=0, isolation_level=None)
                try:
                    other.execute("BEGIN IMMEDIATE")
                    other.execute("ROLLBACK")
                    lock_free.append(True)
                except sqlite3.OperationalError:
                    lock_free.append(False)
                finally:
                    other.close()
            if kwargs["message_id"] == broken:
                raise TemplateRenderError("01-welcome.html: missing variable: 'offer'")
            return real.compose(*args, **kwargs)

    app.dispatcher.composer = Breaking()  # type: ignore[assignment]
    result = app.dispatcher.tick()
    assert result.sent == 4 and result.failed == 1
    rows = h.message_rows(app)
    assert rows[broken].state == MessageState.FAILED
    assert "missing variable: 'offer'" in (rows[broken].error or "")
    assert sorted(fake.fake.ids()) == sorted(set(ids) - {broken})
    assert not database or lock_free == [True] * 5


def test_changes_committed_mid_batch_are_seen_before_each_sub_batch(
    h: Any, provider_app: Callable[..., NurtureApp], fake: RunningFake
) -> None:
    """The re-check reads again what may change after the claim: a booking makes the contact
    exit, and a new address means the message rendered for the old one is not sent to it (it
    is rendered again for the new one)."""
    app = provider_app(sendgrid={"concurrency": 2})
    ids = h.seed(app, emails=40, due=NOW)
    with transaction(app.sessions) as session:
        contacts = list(session.scalars(select(Contact).order_by(Contact.id)))
    booked, moved = contacts[-1], contacts[-2]
    old_address = moved.email
    done: list[bool] = []

    def change_on_first_request(item: Received) -> None:
        if not done:
            done.append(True)
            with transaction(app.sessions) as session:
                session.get(Contact, booked.id).booked_at = NOW  # type: ignore[union-attr]
                session.get(Contact, moved.id).email = "moved@example.com"  # type: ignore[union-attr]

    fake.fake.on_request = change_on_first_request
    first = app.dispatcher.tick()
    assert (first.sent, first.skipped, first.released) == (38, 1, 1)
    assert app.dispatcher.tick().sent == 1  # the released one, rendered again
    received = {item.message_id: item.to for item in fake.fake.received}
    states = h.states(app)
    assert states[ids[-1]] == MessageState.SKIPPED and ids[-1] not in received
    assert received[ids[-2]] == "moved@example.com"
    assert old_address not in received.values()
    assert Counter(fake.fake.ids()) == Counter(ids[:-1])
