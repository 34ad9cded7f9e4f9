"""Messages that need a person: those whose outcome is uncertain (a crash or a lost answer
between the provider call and its record), and how staff settle them.

The engine never re-sends an uncertain message on its own: neither SendGrid nor Twilio takes an
idempotency key, so only someone who has looked at the provider's logs can say whether it went.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import InputError, NotFound
from core.redact import mask_address
from storage.models import Campaign, Contact, Message, MessageState


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


def needing_attention(session: Session, limit: int = 200) -> list[Attention]:
    rows = session.execute(
        select(Message, Campaign.name, Contact.email, Contact.phone)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .join(Contact, Contact.id == Message.contact_id)
        .where(Message.state == MessageState.UNCERTAIN)
        .order_by(Message.updated_at, Message.id)
        .limit(limit)
    )
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
    ]


def resolve(session: Session, message_id: int, how: Resolution, *, now: datetime, by: str) -> None:
    message = session.get(Message, message_id, with_for_update=True)
    if message is None:
        raise NotFound(f"no message {message_id}")
    if message.state != MessageState.UNCERTAIN:
        raise InputError(f"message {message_id} is {message.state}, not uncertain")
    note = f"{message.error or 'uncertain'}; resolved as {how} by {by} at {now:%Y-%m-%d %H:%M}Z"
    message.error = note
    if how == Resolution.SENT:
        message.state, message.sent_at = MessageState.SENT, message.sent_at or message.claimed_at
    elif how == Resolution.RESEND:
        message.state, message.due_at = MessageState.PLANNED, now
        message.claimed_by = message.claimed_at = None
    else:
        message.state, message.skip_reason = MessageState.SKIPPED, f"staff: {note}"
