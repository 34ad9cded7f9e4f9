"""Consent per channel as an append-only ledger; the current state is the latest event.

TCPA: marketing texts need prior express written consent, so an SMS opt-in must carry evidence.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.errors import InputError
from storage.models import Channel, ConsentEvent, ConsentStatus, Contact


def record_consent(
    session: Session,
    contact_id: int,
    channel: Channel | str,
    status: ConsentStatus | str,
    *,
    source: str,
    evidence: str = "",
    occurred_at: datetime | None = None,
) -> ConsentEvent:
    if channel == Channel.SMS and status == ConsentStatus.OPTED_IN and not evidence.strip():
        raise InputError("an SMS opt-in needs written consent evidence (TCPA)")
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise InputError(f"no contact {contact_id}")
    latest = current_consent(session, contact_id, channel)
    event = ConsentEvent(
        contact_id=contact_id,
        channel=str(channel),
        status=str(status),
        occurred_at=occurred_at or utcnow(),
        source=source,
        evidence=evidence,
    )
    session.add(event)
    # An older event arriving late (a re-import of an old form) never overrides a newer one.
    if latest is None or event.occurred_at >= latest.occurred_at:
        setattr(contact, f"{channel}_consent", str(status))
    session.flush()
    return event


def current_consent(
    session: Session, contact_id: int, channel: Channel | str
) -> ConsentEvent | None:
    return session.scalar(
        select(ConsentEvent)
        .where(ConsentEvent.contact_id == contact_id, ConsentEvent.channel == str(channel))
        .order_by(ConsentEvent.occurred_at.desc(), ConsentEvent.id.desc())
        .limit(1)
    )


def has_consent(contact: Contact, channel: Channel | str) -> bool:
    """Current consent, from the column the ledger keeps up to date."""
    return contact.consent_for(channel) == ConsentStatus.OPTED_IN
