"""Apply one normalised delivery event: dedupe, record, move the message forward, suppress.

Providers retry and reorder their callbacks (Twilio: "statuses can arrive out of order"), so an
event is recorded once (`Event.provider_event_id` is unique) and a message's state only ever moves
forward: a late `sent` never undoes `delivered`. The first final outcome wins.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from contacts.optout import opt_out
from contacts.suppressions import suppress
from core.redact import mask_address
from core.settings import StatusSettings
from providers.events import DeliveryEvent, EventType, RejectReason, advances
from scheduler.settle import settle_on_event
from storage.models import Channel, Contact, Event, Message, MessageState, SuppressionReason

log = logging.getLogger("nurture.deliveries")

_TARGET = {
    EventType.QUEUED: MessageState.SENT,  # the provider has it: it was accepted
    EventType.SENT: MessageState.SENT,
    EventType.DELIVERED: MessageState.DELIVERED,
    EventType.BOUNCED: MessageState.UNDELIVERED,
    EventType.FAILED: MessageState.FAILED,
    EventType.REJECTED: MessageState.FAILED,
}
# Provider-reported clicks and (un)subscribes get their own kinds: our own /l clicks and the
# person's own opt-outs and opt-ins are "clicked", "unsubscribed" and "resubscribed".
_KIND = {
    EventType.CLICKED: "provider_clicked",
    EventType.UNSUBSCRIBED: "provider_unsubscribed",
    EventType.RESUBSCRIBED: "provider_resubscribed",
}


def seen(session: Session, event_id: str) -> bool:
    return session.scalar(select(Event.id).where(Event.provider_event_id == event_id)) is not None


def find_message(session: Session, event: DeliveryEvent) -> Message | None:
    """Our id first (custom_args, callback URL); a provider id that disagrees is not trusted."""
    message = session.get(Message, event.message_id) if event.message_id else None
    if message is None and event.provider_message_id:
        message = session.scalar(
            select(Message).where(Message.provider_message_id == event.provider_message_id)
        )
    if (
        message is not None
        and message.provider == event.provider
        and message.provider_message_id
        and event.provider_message_id
        and message.provider_message_id != event.provider_message_id
    ):
        log.warning("%s event for message %s names another provider id", event.provider, message.id)
        return None
    return message


def apply_event(session: Session, event: DeliveryEvent, status: StatusSettings) -> bool:
    """Record and apply; False when this event was already recorded (a provider retry)."""
    if seen(session, event.event_id):
        return False
    message = find_message(session, event)
    row = Event(
        kind=_KIND.get(event.event_type, str(event.event_type)),
        occurred_at=event.occurred_at,
        message_id=message.id if message else None,
        contact_id=message.contact_id if message else None,
        campaign_id=message.campaign_id if message else None,
        step_index=message.step_index if message else None,
        channel=message.channel if message else _channel(event),
        provider=event.provider,
        provider_event_id=event.event_id,
        data=_data(event),
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # the same event, committed by a concurrent request just now
        return False
    if message is not None:
        settle_on_event(session, message, event)  # an uncertain one: the provider has it
        _advance(message, event)
    _consequences(session, event, message, status)
    session.flush()
    return True


def _channel(event: DeliveryEvent) -> str:
    return str(Channel.SMS if event.provider == "twilio" else Channel.EMAIL)


def _data(event: DeliveryEvent) -> dict[str, str]:
    data = {"status": event.provider_status}
    if event.error_code:
        data["error_code"] = event.error_code
    if event.reject_reason:
        data["reason"] = str(event.reject_reason)
    if event.description:
        data["description"] = event.description[:500]
    return data


def _advance(message: Message, event: DeliveryEvent) -> None:
    target = _TARGET.get(event.event_type)
    if target is None or not advances(message.state, target):
        return
    message.state = target
    message.provider_status = event.provider_status[:30]
    if event.provider_message_id and not message.provider_message_id:
        message.provider_message_id = event.provider_message_id[:100]
    if target in (MessageState.UNDELIVERED, MessageState.FAILED):
        message.error = " ".join(
            part for part in (event.provider_status, event.error_code, event.description) if part
        )


def _consequences(
    session: Session, event: DeliveryEvent, message: Message | None, status: StatusSettings
) -> None:
    """Suppress where the outcome says we must never send there again."""
    reason = _suppression_reason(event)
    channel = Channel.SMS if event.provider == "twilio" else Channel.EMAIL
    if reason is None and event.reject_reason == RejectReason.UNREACHABLE and message is not None:
        if _unreachable_count(session, message.contact_id) >= status.unreachable_threshold:
            reason = SuppressionReason.UNREACHABLE
    if reason is None or not event.recipient:
        return
    source = f"{event.provider} {event.provider_status or event.event_type}"
    contact = session.get(Contact, message.contact_id) if message is not None else None
    if contact is not None and contact.address(channel) == event.recipient:
        opt_out(
            session,
            contact,
            channel,
            reason=reason,
            source=source,
            at=event.occurred_at,
            message_id=message.id if message else None,
        )
    else:
        suppress(session, channel, event.recipient, reason, source=source, at=event.occurred_at)
    log.info("suppressed %s (%s): %s", mask_address(event.recipient), channel, reason)


def _suppression_reason(event: DeliveryEvent) -> SuppressionReason | None:
    if event.event_type == EventType.COMPLAINED:
        return SuppressionReason.COMPLAINED
    if event.event_type == EventType.UNSUBSCRIBED:
        return SuppressionReason.UNSUBSCRIBED
    if event.reject_reason == RejectReason.HARD_BOUNCE:
        return SuppressionReason.BOUNCED
    if event.event_type == EventType.REJECTED and event.reject_reason == RejectReason.SUPPRESSED:
        return _mirror_provider_suppression(event.description)
    return None


def _mirror_provider_suppression(description: str) -> SuppressionReason | None:
    """SendGrid drops mail to addresses on its own lists; keep ours in step with it."""
    text = description.lower()
    if "bounce" in text:
        return SuppressionReason.BOUNCED
    if "spam" in text:
        return SuppressionReason.COMPLAINED
    if "unsubscribe" in text:
        return SuppressionReason.UNSUBSCRIBED
    return None


def _unreachable_count(session: Session, contact_id: int) -> int:
    """Unreachable/landline failures for this contact's texts since the last delivered one."""
    rows = session.execute(
        select(Event.kind, Event.data)
        .where(
            Event.contact_id == contact_id,
            Event.channel == str(Channel.SMS),
            Event.kind.in_(["delivered", "bounced", "failed"]),
        )
        .order_by(Event.occurred_at.desc(), Event.id.desc())
        .limit(50)
    )
    count = 0
    for kind, data in rows:
        if kind == "delivered":
            break
        if isinstance(data, dict) and data.get("reason") == str(RejectReason.UNREACHABLE):
            count += 1
    return count
