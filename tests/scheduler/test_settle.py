"""Uncertain messages settle themselves from the providers' own evidence (scheduler/settle.py),
on SQLite and PostgreSQL, with the in-memory channel as the provider and the frozen clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from core.clock import FrozenClock
from core.settings import Settings, load_settings
from nurture.app import NurtureApp
from providers.base import FoundMessage, OutgoingSms, ProviderUnavailable
from providers.events import DeliveryEvent, EventType
from providers.memory import MemoryChannel
from scheduler.attention import LEFT_KIND, SETTLED_KIND, needing_attention
from scheduler.deliveries import apply_event
from scheduler.settle import Settler, checked_automatically
from storage.db import transaction
from storage.models import Event, Message, MessageState


@pytest.fixture
def memory(channel: MemoryChannel, frozen_clock: FrozenClock) -> MemoryChannel:
    channel.clock = frozen_clock  # texts are stamped with the app's clock, as Twilio's would be
    return channel


def _uncertain(app: NurtureApp, ids: list[int], *, lost_record: bool) -> None:
    """As recovery leaves them: `lost_record` ones reached the provider (sent, then the record
    was lost), the others were marked "sending" and never left."""
    if lost_record:
        app.dispatcher.tick()
    with transaction(app.sessions) as session:
        for message in session.scalars(select(Message).where(Message.id.in_(ids))):
            message.state, message.error = MessageState.UNCERTAIN, "worker stopped"
            message.claimed_at = app.clock()
            message.sent_at = message.provider_message_id = message.provider_status = None


def _settler(app: NurtureApp, channel: Any, settings: Settings | None = None) -> Settler:
    return Settler(settings or app.settings, app.sessions, channel, app.clock)


def _events(app: NurtureApp, kind: str) -> dict[int, dict[str, Any]]:
    with transaction(app.sessions, immediate=False) as session:
        rows = session.execute(select(Event.message_id, Event.data).where(Event.kind == kind))
        return {message_id: data for message_id, data in rows}


def _later(clock: FrozenClock, minutes: float) -> None:
    clock.advance(minutes=minutes)


def test_a_text_that_reached_twilio_is_sent_with_its_sid(
    h: Any, nurture_app: NurtureApp, memory: MemoryChannel, frozen_clock: FrozenClock
) -> None:
    [text] = h.seed(nurture_app, texts=1, due=frozen_clock())
    _uncertain(nurture_app, [text], lost_record=True)
    _later(frozen_clock, 6)  # recovery's timeout has passed
    decisions = _settler(nurture_app, memory).tick()
    assert [d.decision for d in decisions] == ["sent"]
    message = h.message_rows(nurture_app)[text]
    assert message.state == MessageState.SENT and message.provider_message_id == f"mem-sms-{text}"
    assert message.provider_status == "queued" and message.sent_at is not None
    data = _events(nurture_app, SETTLED_KIND)[text]
    assert data["sid"] == f"mem-sms-{text}" and "one text from our sender" in data["rule"]
    assert "+1******" in data["evidence"] and nurture_app.settings.sms.from_number not in str(data)
    assert len(memory.texts) == 1


def test_a_text_that_never_left_is_planned_again_and_sent_exactly_once(
    h: Any, nurture_app: NurtureApp, memory: MemoryChannel, frozen_clock: FrozenClock
) -> None:
    [text] = h.seed(nurture_app, texts=1, due=frozen_clock())
    _uncertain(nurture_app, [text], lost_record=False)
    _later(frozen_clock, 6)
    [decision] = _settler(nurture_app, memory).tick()
    assert decision.decision == "planned again" and "no text to +1******" in decision.evidence
    message = h.message_rows(nurture_app)[text]
    assert message.state == MessageState.PLANNED and message.due_at == frozen_clock()
    assert "between 2026-12-01 17:59:00Z and 2026-12-01 18:06:00Z" in decision.evidence
    nurture_app.dispatcher.tick()  # the normal checks, then the send
    nurture_app.dispatcher.tick()
    assert [sms.message_id for sms in memory.texts] == [text]
    assert h.states(nurture_app)[text] == MessageState.SENT
    assert _settler(nurture_app, memory).tick() == []  # nothing left to decide


def test_several_texts_of_ours_to_the_number_are_left_for_staff(
    h: Any, nurture_app: NurtureApp, memory: MemoryChannel, frozen_clock: FrozenClock
) -> None:
    [text] = h.seed(nurture_app, texts=1, due=frozen_clock())
    _uncertain(nurture_app, [text], lost_record=True)
    # Another text from our number to the same phone in the window (sent by hand, say).
    sent = memory.texts[0]
    memory.texts.append(OutgoingSms(999, sent.to, "other", from_number=sent.from_number))
    memory.texted_at.append(frozen_clock())
    _later(frozen_clock, 6)
    [decision] = _settler(nurture_app, memory).tick()
    assert decision.decision == "left for staff" and "more than one text" in decision.rule
    message = h.message_rows(nurture_app)[text]
    assert message.state == MessageState.UNCERTAIN and "more than one text" in (message.error or "")
    assert text in _events(nurture_app, LEFT_KIND)
    with transaction(nurture_app.sessions, immediate=False) as session:
        todo = needing_attention(session, checked_automatically={"sms"})
    assert [item.message_id for item in todo] == [text]
    assert _settler(nurture_app, memory).tick() == []  # not asked again


def test_a_failed_lookup_decides_nothing_and_is_left_for_staff(
    h: Any, nurture_app: NurtureApp, memory: MemoryChannel, frozen_clock: FrozenClock
) -> None:
    [text] = h.seed(nurture_app, texts=1, due=frozen_clock())
    _uncertain(nurture_app, [text], lost_record=False)
    memory.lookup_error = ProviderUnavailable("twilio", "HTTP 503")
    with transaction(nurture_app.sessions, immediate=False) as session:
        assert needing_attention(session, checked_automatically={"sms"}) == []  # being checked
    [decision] = _settler(nurture_app, memory).tick()
    assert decision.decision == "left for staff" and "could not be read" in decision.rule
    message = h.message_rows(nurture_app)[text]
    assert message.state == MessageState.UNCERTAIN and "could not be read" in (message.error or "")
    with transaction(nurture_app.sessions, immediate=False) as session:
        assert [
            a.message_id for a in needing_attention(session, checked_automatically={"sms"})
        ] == [text]


class _Listed:
    """A provider log answering with fixed messages (another sender's, a known SID)."""

    name = "twilio"

    def __init__(self, found: list[FoundMessage]) -> None:
        self.found = found

    async def find_sent(self, to: str, after: Any, before: Any) -> list[FoundMessage]:
        return [message for message in self.found if message.to == to]


def test_texts_from_another_sender_or_already_recorded_are_not_evidence(
    h: Any, nurture_app: NurtureApp, memory: MemoryChannel, frozen_clock: FrozenClock
) -> None:
    first, second = h.seed(nurture_app, texts=2, due=frozen_clock())
    nurture_app.dispatcher.tick()  # both sent and recorded
    _uncertain(nurture_app, [second], lost_record=False)
    rows = h.message_rows(nurture_app)
    to = memory.texts[1].to
    first_sid = rows[first].provider_message_id
    found = [
        FoundMessage("SMother", to, "+19995550000", "", "delivered", frozen_clock()),
        FoundMessage(first_sid, to, nurture_app.settings.sms.from_number, "", "sent", None),
    ]
    [decision] = _settler(nurture_app, _Listed(found)).tick()
    assert decision.decision == "planned again"


def test_an_email_with_a_sendgrid_event_is_sent(
    h: Any, nurture_app: NurtureApp, memory: MemoryChannel, frozen_clock: FrozenClock
) -> None:
    [email] = h.seed(nurture_app, emails=1, due=frozen_clock())
    _uncertain(nurture_app, [email], lost_record=False)
    with transaction(nurture_app.sessions) as session:  # an open, which moves no state itself
        session.add(
            Event(kind="opened", message_id=email, provider="sendgrid", provider_event_id="ev-1")
        )
    [decision] = _settler(nurture_app, memory).tick()
    assert decision.decision == "sent" and "SendGrid event opened ev-1" in decision.evidence
    assert h.states(nurture_app)[email] == MessageState.SENT


def test_a_processed_event_through_the_webhook_settles_it_at_once(
    h: Any, nurture_app: NurtureApp, frozen_clock: FrozenClock
) -> None:
    [email] = h.seed(nurture_app, emails=1, due=frozen_clock())
    _uncertain(nurture_app, [email], lost_record=False)
    event = DeliveryEvent(
        "sendgrid", EventType.QUEUED, "sg-1", frozen_clock(), email, "sgid-1", "x@example.com",
        provider_status="processed",
    )  # fmt: skip
    with transaction(nurture_app.sessions) as session:
        assert apply_event(session, event, nurture_app.settings.status)
    message = h.message_rows(nurture_app)[email]
    assert message.state == MessageState.SENT and message.provider_message_id == "sgid-1"
    assert "sendgrid event processed sg-1" in _events(nurture_app, SETTLED_KIND)[email]["evidence"]


def _webhook_settings(app: NurtureApp, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("NURTURE_SENDGRID_WEBHOOK_PUBLIC_KEY", "MFkw-test-key")
    return load_settings(
        database={"url": app.settings.database.url}, email={"provider": "sendgrid"}
    )


def _sendgrid_event(app: NurtureApp, event_id: str, message_id: int | None = None) -> None:
    with transaction(app.sessions) as session:
        session.add(
            Event(
                kind="delivered",
                occurred_at=app.clock(),
                message_id=message_id,
                provider="sendgrid",
                provider_event_id=event_id,
            )
        )


def test_with_a_healthy_webhook_a_silent_email_is_planned_again_after_the_wait(
    h: Any,
    nurture_app: NurtureApp,
    memory: MemoryChannel,
    frozen_clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _webhook_settings(nurture_app, monkeypatch)
    assert checked_automatically(settings) == {"sms", "email"}
    [email] = h.seed(nurture_app, emails=1, due=frozen_clock())
    _uncertain(nurture_app, [email], lost_record=False)
    _later(frozen_clock, 6)
    _sendgrid_event(nurture_app, "other-1")  # events from after the send are arriving
    settler = _settler(nurture_app, memory, settings)
    assert settler.tick() == []  # within the wait: its events may still come
    _later(frozen_clock, 5)  # past the ten minutes
    [decision] = settler.tick()
    assert decision.decision == "planned again" and "no SendGrid event" in decision.evidence
    assert h.states(nurture_app)[email] == MessageState.PLANNED
    nurture_app.dispatcher.tick()
    assert [mail.message_id for mail in memory.emails] == [email]


def test_a_silent_webhook_proves_nothing(
    h: Any,
    nurture_app: NurtureApp,
    memory: MemoryChannel,
    frozen_clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _webhook_settings(nurture_app, monkeypatch)
    [email] = h.seed(nurture_app, emails=1, due=frozen_clock())
    _sendgrid_event(nurture_app, "before-the-send")  # nothing after it
    _uncertain(nurture_app, [email], lost_record=False)
    _later(frozen_clock, 2)
    _sendgrid_event(nurture_app, "too-old")
    _later(frozen_clock, 90)  # past the wait, and the last event is over an hour old
    [decision] = _settler(nurture_app, memory, settings).tick()
    assert decision.decision == "left for staff" and "silence proves nothing" in decision.rule
    assert h.states(nurture_app)[email] == MessageState.UNCERTAIN


def test_without_the_webhook_emails_stay_for_staff(
    h: Any, nurture_app: NurtureApp, memory: MemoryChannel, frozen_clock: FrozenClock
) -> None:
    assert checked_automatically(nurture_app.settings) == {"sms"}
    [email] = h.seed(nurture_app, emails=1, due=frozen_clock())
    _uncertain(nurture_app, [email], lost_record=False)
    _later(frozen_clock, 60)
    assert _settler(nurture_app, memory).tick() == []
    assert h.states(nurture_app)[email] == MessageState.UNCERTAIN
    with transaction(nurture_app.sessions, immediate=False) as session:
        todo = needing_attention(
            session, checked_automatically=checked_automatically(nurture_app.settings)
        )
    assert [item.message_id for item in todo] == [email]


def test_the_worker_clock_runs_the_settling_step(nurture_app: NurtureApp) -> None:
    clock = nurture_app.engine_clock()
    job = clock.scheduler.get_job("settle")
    assert job is not None and job.trigger.interval == timedelta(seconds=60)
    assert "settle" in clock.ticks and "recover" in clock.ticks
