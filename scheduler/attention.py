"""Messages that need a person: those whose outcome is uncertain (a crash or a lost answer
between the provider call and its record), and how they are settled.

Neither SendGrid nor Twilio takes an idempotency key, so an uncertain message is never blindly
re-sent. It is settled from the provider's own evidence: automatically where that evidence is
clear (scheduler/settle.py), by staff who have looked at the provider's logs otherwise. Both
settle through the same two moves here (`mark_sent`, `plan_again`), and the page lists the
automatic decisions beside what is left for staff.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import InputError, NotFound
from core.redact import mask_address
from storage.models import Campaign, Contact, Event, Message, MessageState

#: An automatic decision (sent or planned again), with its evidence and rule.
SETTLED_KIND = "uncertain_settled"
#: The automatic check looked and could not decide (ambiguous evidence, a failed lookup).
LEFT_KIND = "uncertain_left"


class Resolution(enum.StrEnum):
    SENT = "sent"  # the provider's log shows it went out
    RESEND = "resend"  # the provider's log shows it did not: send it again
    SKIP = "skip"  # leave it unsent


@dataclass(frozen=True)
class Attention:
    message_id: int
    campaign: str
    step_index: int
    channel: str
    to: str  # masked
    since: datetime
    error: str


@dataclass(frozen=True)
class Settled:
    """An automatic decision as the page shows it."""

    at: datetime
    message_id: int | None
    campaign: str
    channel: str
    to: str  # masked
    decision: str
    evidence: str
    rule: str


def mark_sent(
    message: Message, *, at: datetime | None, provider: str = "", sid: str = "", status: str = ""
) -> None:
    """The provider has it. `at` is when it was accepted (else the claim: the send began then)."""
    message.state, message.sent_at = MessageState.SENT, message.sent_at or at or message.claimed_at
    if provider:
        message.provider = provider[:20]
    if sid and not message.provider_message_id:
        message.provider_message_id = sid[:100]
    if status:
        message.provider_status = status[:30]


def plan_again(message: Message, *, now: datetime) -> None:
    """It never reached the provider: due now, so every check (consent, suppression, quiet
    hours, caps) runs again before it goes."""
    message.state, message.due_at = MessageState.PLANNED, now
    message.claimed_by = message.claimed_at = None


def needing_attention(
    session: Session, limit: int = 200, *, checked_automatically: Collection[str] = ()
) -> list[Attention]:
    """Uncertain messages for staff. Those of a channel in `checked_automatically` are left out
    until the automatic check has looked and could not decide (an `uncertain_left` event)."""
    rows = session.execute(
        select(Message, Campaign.name, Contact.email, Contact.phone)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .join(Contact, Contact.id == Message.contact_id)
        .where(Message.state == MessageState.UNCERTAIN)
        .order_by(Message.updated_at, Message.id)
        .limit(limit)
    ).all()
    left = left_for_staff(session, {message.id: message.claimed_at for message, *_ in rows})
    return [
        Attention(
            message.id,
            name,
            message.step_index,
            message.channel,
            mask_address(email if message.channel == "email" else phone),
            message.updated_at,
            message.error or "",
        )
        for message, name, email, phone in rows
        if message.channel not in checked_automatically or message.id in left
    ]


def left_for_staff(session: Session, claimed: Mapping[int, datetime | None]) -> set[int]:
    """Of these uncertain messages (id: claim time), those the automatic check gave up on
    since their send."""
    if not claimed:
        return set()
    rows = session.execute(
        select(Event.message_id, Event.occurred_at).where(
            Event.kind == LEFT_KIND, Event.message_id.in_(list(claimed))
        )
    )
    left = set()
    for message_id, at in rows:
        since = claimed.get(message_id) if message_id is not None else None
        if message_id is not None and (since is None or at >= since):
            left.add(message_id)
    return left


def recently_settled(session: Session, limit: int = 50) -> list[Settled]:
    rows = session.execute(
        select(Event, Campaign.name, Contact.email, Contact.phone)
        .outerjoin(Campaign, Campaign.id == Event.campaign_id)
        .outerjoin(Contact, Contact.id == Event.contact_id)
        .where(Event.kind == SETTLED_KIND)
        .order_by(Event.occurred_at.desc(), Event.id.desc())
        .limit(limit)
    )
    return [
        Settled(
            event.occurred_at,
            event.message_id,
            name or "",
            event.channel or "",
            mask_address(email if event.channel == "email" else phone),
            _text(event.data, "decision"),
            _text(event.data, "evidence"),
            _text(event.data, "rule"),
        )
        for event, name, email, phone in rows
    ]


def _text(data: Any, key: str) -> str:
    return str(data.get(key, "")) if isinstance(data, dict) else ""


def resolve(session: Session, message_id: int, how: Resolution, *, now: datetime, by: str) -> None:
    message = session.get(Message, message_id, with_for_update=True)
    if message is None:
        raise NotFound(f"no message {message_id}")
    if message.state != MessageState.UNCERTAIN:
        raise InputError(f"message {message_id} is {message.state}, not uncertain")
    note = f"{message.error or 'uncertain'}; resolved as {how} by {by} at {now:%Y-%m-%d %H:%M}Z"
    message.error = note
    if how == Resolution.SENT:
        mark_sent(message, at=None)
    elif how == Resolution.RESEND:
        plan_again(message, now=now)
    else:
        message.state, message.skip_reason = MessageState.SKIPPED, f"staff: {note}"
