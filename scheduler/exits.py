"""Exit conditions, checked by the planner before a step is created and again before a send.

The planner checks a whole batch at once: `active_suppressions` loads the suppressed addresses of
every contact in it with one query, and the rules below look them up in that set.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.definitions import Sequence
from contacts.consent import has_consent
from contacts.suppressions import address_hash
from storage.models import Contact, Suppression

Suppressed = set[tuple[str, str]]  # (channel, address hash) of active suppressions


def active_suppressions(session: Session, contacts: Iterable[Contact]) -> Suppressed:
    wanted = {
        address_hash(channel, address)
        for contact in contacts
        for channel in ("email", "sms")
        if (address := contact.address(channel))
    }
    if not wanted:
        return set()
    rows = session.execute(
        select(Suppression.channel, Suppression.address_hash).where(
            Suppression.address_hash.in_(wanted), Suppression.lifted_at.is_(None)
        )
    )
    return {(channel, digest) for channel, digest in rows}


def reachable(contact: Contact, channel: str, suppressed: Suppressed) -> bool:
    """Consent given, an address on file, and no suppression for that address."""
    address = contact.address(channel)
    return (
        address is not None
        and has_consent(contact, channel)
        and (channel, address_hash(channel, address)) not in suppressed
    )


def exit_reason(contact: Contact, sequence: Sequence, suppressed: Suppressed) -> str | None:
    """Why this contact must leave the sequence now, or None to carry on."""
    if contact.erased_at is not None:
        return "erased"
    if sequence.exit.booked and contact.booked_at is not None:
        return "booked"
    if sequence.exit.unsubscribed_everywhere and not any(
        reachable(contact, channel, suppressed) for channel in sequence.channels
    ):
        return "unsubscribed"
    return None
