"""Exit conditions, checked by the planner before a step is created and again before a send."""

from __future__ import annotations

from sqlalchemy.orm import Session

from campaigns.definitions import Sequence
from contacts.consent import has_consent
from contacts.suppressions import is_suppressed
from nurture.models import Contact


def reachable(session: Session, contact: Contact, channel: str) -> bool:
    """Consent given, an address on file, and no suppression for that address."""
    address = contact.address(channel)
    return (
        address is not None
        and has_consent(contact, channel)
        and not is_suppressed(session, channel, address)
    )


def exit_reason(session: Session, contact: Contact, sequence: Sequence) -> str | None:
    """Why this contact must leave the sequence now, or None to carry on."""
    if contact.erased_at is not None:
        return "erased"
    if sequence.exit.booked and contact.booked_at is not None:
        return "booked"
    if sequence.exit.unsubscribed_everywhere and not any(
        reachable(session, contact, channel) for channel in sequence.channels
    ):
        return "unsubscribed"
    return None
