"""Whether a contact may be messaged on a channel: opted in there, with an address on file that
is not suppressed. The one rule every path reads: the planner and the dispatcher
(scheduler.checks.Facts.reachable, with a batch's suppressions loaded up front) and an
event-started enrollment (campaigns.triggers, one contact at a time). A compliance change
(TCPA, CAN-SPAM) is made here once.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session

from contacts.suppressions import is_suppressed
from storage.models import ConsentStatus, Contact


class Suppressed(Protocol):
    """Is this address suppressed on this channel: a batch's pre-loaded set, or a query."""

    def __call__(self, channel: str, address: str) -> bool: ...


def is_reachable(
    consent: str | None, address: str | None, channel: str, suppressed: Suppressed
) -> bool:
    """Consent given, an address on file, and no active suppression for it. `suppressed` is
    asked last, only for an address with consent (for a single contact, that is a query)."""
    if address is None or consent != ConsentStatus.OPTED_IN:
        return False
    return not suppressed(channel, address)


def contact_reachable(session: Session, contact: Contact, channel: str) -> bool:
    """is_reachable for one contact, its suppression looked up in the database."""
    return is_reachable(
        contact.consent_for(channel),
        contact.address(channel),
        channel,
        lambda on, address: is_suppressed(session, on, address),
    )
