"""A person's own opt-out and opt-in, applied everywhere at once.

An opt-out writes a suppression (what every send checks), a consent-ledger entry (the history) and
an event (the reports), in the caller's transaction, so it is durable before any response.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from contacts.consent import record_consent
from contacts.suppressions import lift_by_person, suppress
from core.clock import utcnow
from storage.models import Channel, ConsentStatus, Contact, Event, SuppressionReason


def opt_out(
    session: Session,
    contact: Contact,
    channel: Channel | str,
    *,
    reason: SuppressionReason | str = SuppressionReason.UNSUBSCRIBED,
    source: str,
    at: datetime | None = None,
    message_id: int | None = None,
    campaign_id: int | None = None,
) -> bool:
    """Suppress the contact's address on a channel; True if it was not suppressed before."""
    address = contact.address(channel)
    when = at or utcnow()
    if address is None:
        return False
    row = suppress(session, channel, address, reason, source=source, at=when)
    newly = row.created_at == when
    if contact.consent_for(channel) != ConsentStatus.OPTED_OUT:
        record_consent(
            session,
            contact.id,
            channel,
            ConsentStatus.OPTED_OUT,
            source=source,
            evidence=f"{reason} via {source}",
            occurred_at=when,
        )
    session.add(
        Event(
            kind="unsubscribed",
            occurred_at=when,
            contact_id=contact.id,
            channel=str(channel),
            message_id=message_id,
            campaign_id=campaign_id,
            data={"reason": str(reason), "source": source},
        )
    )
    session.flush()
    return newly


def opt_in_again(
    session: Session, contact: Contact, channel: Channel | str, *, how: str, evidence: str
) -> bool:
    """The person's own explicit re-opt-in (START reply, preference page): the only way back."""
    address = contact.address(channel)
    if address is None:
        return False
    lift_by_person(session, channel, address, how)
    record_consent(
        session, contact.id, channel, ConsentStatus.OPTED_IN, source=how, evidence=evidence
    )
    session.add(
        Event(kind="resubscribed", contact_id=contact.id, channel=str(channel), data={"how": how})
    )
    session.flush()
    return True
