"""One small vocabulary for what providers tell us after a send (django-anymail's, trimmed).

Webhook receivers turn SendGrid and Twilio payloads into `DeliveryEvent`s; everything downstream
(message states, suppressions, reports) speaks only this vocabulary, never a provider's.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from storage.models import MessageState


class EventType(enum.StrEnum):
    QUEUED = "queued"  # the provider has it and will try (SendGrid processed, Twilio queued)
    SENT = "sent"  # handed to the carrier / next hop
    DELIVERED = "delivered"
    DEFERRED = "deferred"  # a temporary failure; the provider keeps retrying
    BOUNCED = "bounced"  # the receiving side refused it
    REJECTED = "rejected"  # the provider refused to send it (SendGrid dropped)
    FAILED = "failed"  # could not be sent or delivered (Twilio failed/undelivered)
    OPENED = "opened"
    CLICKED = "clicked"
    COMPLAINED = "complained"  # marked as spam
    UNSUBSCRIBED = "unsubscribed"
    RESUBSCRIBED = "resubscribed"
    UNKNOWN = "unknown"


class RejectReason(enum.StrEnum):
    HARD_BOUNCE = "hard_bounce"  # the address does not exist: never send there again
    BLOCKED = "blocked"  # refused for now (reputation, content); may work later
    UNREACHABLE = "unreachable"  # Twilio 30003/30005/30006: off, unknown or a landline
    SUPPRESSED = "suppressed"  # the provider's own suppression list
    OTHER = "other"


@dataclass(frozen=True)
class DeliveryEvent:
    """One provider event, normalised; `event_id` is the dedupe key providers' retries share."""

    provider: str
    event_type: EventType
    event_id: str
    occurred_at: datetime
    message_id: int | None = None  # ours, from custom_args or the status-callback URL
    provider_message_id: str = ""
    recipient: str = ""
    reject_reason: RejectReason | None = None
    error_code: str = ""
    description: str = ""
    provider_status: str = ""  # the provider's own word for it (bounce, undelivered, ...)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


# How far along a message is. Providers report out of order (a late "sent" after "delivered"),
# and a status callback can even beat the dispatcher's own "sent" record, so every writer of
# Message.state moves it only forward; the first final outcome wins.
_RANK = {
    MessageState.PLANNED: 0,
    MessageState.CLAIMED: 0,
    MessageState.SENDING: 1,
    MessageState.UNCERTAIN: 1,
    MessageState.SENT: 2,
    MessageState.DELIVERED: 3,
    MessageState.UNDELIVERED: 3,
    MessageState.FAILED: 3,
}


def advances(current: str, target: MessageState) -> bool:
    """True when `target` is strictly later than `current` (skipped messages never move)."""
    try:
        rank = _RANK.get(MessageState(current))
    except ValueError:
        return False
    return rank is not None and _RANK[target] > rank
