"""Erase a person's data on request (CCPA right to delete), keeping them unsubscribed.

Every address of the contact is suppressed first (reason "forgotten" unless already suppressed
for another reason), then the address itself is blanked on the suppression row: only its
sha256 stays, which is enough to refuse a later import or send to that address and useless for
anything else. The contact row stays, anonymised (erased_at set), so campaign counts and
message history still add up; names, addresses, custom fields, tags and the consent ledger
(whose evidence can quote the person) are removed, and nothing more is planned for them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from contacts.suppressions import address_hash, suppress
from core.errors import InputError
from storage.models import (
    ConsentEvent,
    Contact,
    ContactTag,
    Enrollment,
    EnrollmentState,
    Event,
    Message,
    MessageState,
    Suppression,
    SuppressionReason,
)

log = logging.getLogger("nurture.contacts.forget")


@dataclass
class Forgotten:
    contact_id: int
    suppressed: list[str]  # channels now suppressed by hash
    messages_skipped: int


def forget_contact(
    session: Session, contact: Contact, *, requested_by: str, now: datetime
) -> Forgotten:
    """Erase the contact's personal data in the caller's transaction."""
    if contact.erased_at is not None:
        raise InputError(
            f"contact {contact.id} was already forgotten on {contact.erased_at:%Y-%m-%d}"
        )
    channels = []
    for channel in ("email", "sms"):
        address = contact.address(channel)
        if not address:
            continue
        suppress(session, channel, address, SuppressionReason.FORGOTTEN,
                 source=f"forget:{requested_by}", at=now)  # fmt: skip
        session.execute(
            update(Suppression)
            .where(Suppression.channel == channel,
                   Suppression.address_hash == address_hash(channel, address))
            .values(address=None)
        )  # fmt: skip
        channels.append(channel)
    skipped = session.connection().execute(  # a Connection's result is a CursorResult (rowcount)
        update(Message)
        .where(Message.contact_id == contact.id,
               Message.state.in_([MessageState.PLANNED, MessageState.CLAIMED]))
        .values(state=MessageState.SKIPPED, skip_reason="contact forgotten")
    ).rowcount  # fmt: skip
    session.execute(
        update(Enrollment)
        .where(Enrollment.contact_id == contact.id, Enrollment.state == EnrollmentState.ACTIVE)
        .values(state=EnrollmentState.EXITED, exited_at=now, exit_reason="forgotten")
    )
    session.execute(delete(ConsentEvent).where(ConsentEvent.contact_id == contact.id))
    session.execute(delete(ContactTag).where(ContactTag.contact_id == contact.id))
    session.execute(update(Event).where(Event.contact_id == contact.id).values(user_agent=None))
    log.info("forgot contact %d (%s)", contact.id, ", ".join(channels) or "no addresses")
    contact.first_name = contact.last_name = ""
    contact.email = contact.phone = None
    contact.custom_fields = {}
    contact.email_consent = contact.sms_consent = None
    contact.erased_at = now
    session.expire(contact, ["tag_rows", "consent_events"])
    session.add(
        Event(kind="forgotten", occurred_at=now, contact_id=contact.id,
              data={"requested_by": requested_by, "channels": channels})
    )  # fmt: skip
    session.flush()
    return Forgotten(contact.id, channels, skipped or 0)
