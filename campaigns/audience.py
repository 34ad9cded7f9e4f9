"""Who a sequence is for: contacts with its tags and the consent it requires, not booked."""

from __future__ import annotations

from sqlalchemy import Select, exists, false, func, select

from campaigns.definitions import Sequence
from storage.models import ConsentStatus, Contact, ContactTag


def audience_query(sequence: Sequence) -> Select[int]:
    """Ids of contacts the sequence may enroll (suppressions are checked again at every send).
    None for a sequence a booking event starts: it takes each person when their event arrives
    (campaigns.triggers), so a launch, a preview's audience and a projection count nobody."""
    query = select(Contact.id).where(Contact.erased_at.is_(None), Contact.booked_at.is_(None))
    if sequence.trigger != "launch":
        return query.where(false())
    for channel in sequence.audience.require_consent:
        query = query.where(getattr(Contact, f"{channel}_consent") == ConsentStatus.OPTED_IN)
    if sequence.audience.tags:
        query = query.where(
            exists().where(
                ContactTag.contact_id == Contact.id, ContactTag.tag.in_(sequence.audience.tags)
            )
        )
    return query


def audience_size_query(sequence: Sequence) -> Select[int]:
    return select(func.count()).select_from(audience_query(sequence).subquery())
