"""Provider events applied to state: recorded once, a message only moves forward, and the
outcomes that forbid another send suppress the address."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from core.clock import FrozenClock
from nurture.app import NurtureApp
from providers.events import DeliveryEvent, EventType, RejectReason, advances
from scheduler.deliveries import apply_event
from storage.db import transaction
from storage.models import (
    Contact,
    Event,
    Message,
    MessageState,
    Suppression,
    SuppressionReason,
)
from tests.scheduler.conftest import seed

REPORTED = [
    MessageState.SENT,
    MessageState.DELIVERED,
    MessageState.UNDELIVERED,
    MessageState.FAILED,
]
FINAL = {MessageState.DELIVERED, MessageState.UNDELIVERED, MessageState.FAILED}


@given(st.lists(st.sampled_from(REPORTED), max_size=8))
def test_first_final_outcome_wins(reports):
    state = MessageState.SENDING
    for target in reports:
        if advances(state, target):
            state = target
    finals = [report for report in reports if report in FINAL]
    if finals:
        assert state == finals[0]
    elif reports:
        assert state == MessageState.SENT
    else:
        assert state == MessageState.SENDING


def test_skipped_and_unknown_states_never_move():
    assert not advances(MessageState.SKIPPED, MessageState.DELIVERED)
    assert not advances("something-else", MessageState.SENT)
    assert not advances(MessageState.DELIVERED, MessageState.SENT)
    assert advances(MessageState.UNCERTAIN, MessageState.SENT)


def _event(
    clock: FrozenClock, message_id: int | None, kind: EventType, n: int, **extra
) -> DeliveryEvent:
    return DeliveryEvent(
        provider="sendgrid",
        event_type=kind,
        event_id=f"sg-{n}",
        occurred_at=clock(),
        message_id=message_id,
        provider_status=str(kind),
        **extra,
    )


def _apply(app: NurtureApp, event: DeliveryEvent) -> bool:
    with transaction(app.sessions) as session:
        return apply_event(session, event, app.settings.status)


def _sent_email(app: NurtureApp, clock: FrozenClock) -> int:
    [message_id] = seed(app, emails=1, due=clock())
    with transaction(app.sessions) as session:
        session.get(Message, message_id).state = MessageState.SENT
    return message_id


def _state(app: NurtureApp, message_id: int) -> str:
    with app.sessions() as session:
        return session.get(Message, message_id).state


def test_an_event_is_recorded_once_and_late_reports_never_undo_delivered(
    nurture_app: NurtureApp, frozen_clock: FrozenClock
) -> None:
    message_id = _sent_email(nurture_app, frozen_clock)
    delivered = _event(frozen_clock, message_id, EventType.DELIVERED, 1)
    assert _apply(nurture_app, delivered)
    assert not _apply(nurture_app, delivered)  # the provider's retry
    assert _apply(nurture_app, _event(frozen_clock, message_id, EventType.SENT, 2))
    assert _apply(nurture_app, _event(frozen_clock, message_id, EventType.BOUNCED, 3))
    assert _state(nurture_app, message_id) == MessageState.DELIVERED
    with nurture_app.sessions() as session:
        assert (
            session.scalar(select(func.count(Event.id)).where(Event.message_id == message_id)) == 3
        )


def test_a_hard_bounce_suppresses_and_an_unknown_message_is_still_recorded(
    nurture_app: NurtureApp, frozen_clock: FrozenClock
) -> None:
    message_id = _sent_email(nurture_app, frozen_clock)
    with nurture_app.sessions() as session:
        address = session.get(Contact, session.get(Message, message_id).contact_id).email
    bounce = _event(
        frozen_clock,
        message_id,
        EventType.BOUNCED,
        1,
        recipient=address,
        reject_reason=RejectReason.HARD_BOUNCE,
    )
    assert _apply(nurture_app, bounce)
    assert _apply(nurture_app, _event(frozen_clock, None, EventType.OPENED, 2))
    assert _state(nurture_app, message_id) == MessageState.UNDELIVERED
    with nurture_app.sessions() as session:
        reasons = session.scalars(select(Suppression.reason).where(Suppression.channel == "email"))
        assert list(reasons) == [SuppressionReason.BOUNCED]
        orphan = session.scalar(select(Event).where(Event.provider_event_id == "sg-2"))
        assert orphan is not None and orphan.message_id is None
