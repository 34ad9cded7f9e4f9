"""The suppression list: checked before every send, never lifted by an import, merge or edit.

Rows are keyed by a hash of the address so that `forget` can erase the address itself and the
person stays unsubscribed. Only the person's own re-opt-in (START, preference page) lifts one.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import utcnow
from storage.models import Channel, Suppression, SuppressionReason

#: Reasons a person may lift by opting in again themselves; a hard bounce or complaint may not.
SELF_LIFTABLE = frozenset(
    {SuppressionReason.UNSUBSCRIBED, SuppressionReason.STOP, SuppressionReason.MANUAL}
)


def address_hash(channel: Channel | str, address: str) -> str:
    return hashlib.sha256(f"{channel}:{address.strip().lower()}".encode()).hexdigest()


def active_suppression(
    session: Session, channel: Channel | str, address: str
) -> Suppression | None:
    return session.scalar(
        select(Suppression).where(
            Suppression.channel == str(channel),
            Suppression.address_hash == address_hash(channel, address),
            Suppression.lifted_at.is_(None),
        )
    )


def is_suppressed(session: Session, channel: Channel | str, address: str | None) -> bool:
    return address is None or active_suppression(session, channel, address) is not None


def suppress(
    session: Session,
    channel: Channel | str,
    address: str,
    reason: SuppressionReason | str,
    *,
    source: str = "",
    at: datetime | None = None,
) -> Suppression:
    """Add (or re-activate) a suppression; idempotent, the first active reason is kept."""
    digest = address_hash(channel, address)
    row = session.scalar(
        select(Suppression)
        .where(Suppression.channel == str(channel), Suppression.address_hash == digest)
        .with_for_update()
    )
    when = at or utcnow()
    if row is None:
        row = Suppression(
            channel=str(channel),
            address_hash=digest,
            address=address,
            reason=str(reason),
            source=source,
            created_at=when,
        )
        session.add(row)
    elif row.lifted_at is not None:
        row.reason, row.source, row.created_at = str(reason), source, when
        row.lifted_at = row.lifted_by = None
    session.flush()
    return row


def lift_by_person(session: Session, channel: Channel | str, address: str, how: str) -> bool:
    """Lift a suppression because the person asked (START reply, preference page)."""
    row = active_suppression(session, channel, address)
    if row is None:
        return False
    if row.reason not in SELF_LIFTABLE:
        return False
    row.lifted_at = utcnow()
    row.lifted_by = how
    session.flush()
    return True
