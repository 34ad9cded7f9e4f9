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


def unreachable_because(
    consent: str | None, address: str | None, channel: str, suppressed: Suppressed
) -> str | None:
    """Why the contact may not be messaged on `channel`, in staff's words, or None when it
    may: consent given, an address on file, and no active suppression for it. `suppressed` is
    asked last, only for an address with consent (for a single contact, that is a query)."""
    if address is None or consent != ConsentStatus.OPTED_IN:
        return f"no {channel} consent"
    if suppressed(channel, address):
        return "suppressed"
    return None


def is_reachable(
    consent: str | None, address: str | None, channel: str, suppressed: Suppressed
) -> bool:
    """unreachable_because, as a yes or no (the planner's and the dispatcher's checks)."""
    return unreachable_because(consent, address, channel, suppressed) is None


def contact_reachable(session: Session, contact: Contact, channel: str) -> bool:
    """is_reachable for one contact, its suppression looked up in the database."""
    return is_reachable(
        contact.consent_for(channel),
        contact.address(channel),
        channel,
        lambda on, address: is_suppressed(session, on, address),
    )
