"""The suppression list: checked before every send, never lifted by an import, merge or edit.

Rows are keyed by a hash of the address so that `forget` can erase the address itself and the
person stays unsubscribed. Only the person's own re-opt-in (START, preference page) lifts one.
The hash is keyed with this install's secret (core.suppression_hash: a plain SHA-256 of a phone
number brute-forces in minutes); sessions carry the hasher, so every lookup uses the same key.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import NamedTuple

from sqlalchemy import null, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningInsert

from core.errors import ConfigError
from core.suppression_hash import HASHER_KEY, SuppressionHasher
from storage.models import Base, Channel, Suppression, SuppressionReason

#: Reasons a person may lift by opting in again themselves; a hard bounce or complaint may not.
SELF_LIFTABLE = frozenset(
    {SuppressionReason.UNSUBSCRIBED, SuppressionReason.STOP, SuppressionReason.MANUAL}
)
_TABLE = Base.metadata.tables[Suppression.__tablename__]


class NewSuppression(NamedTuple):
    channel: str
    address: str
    reason: str
    source: str
    at: datetime


def hasher_of(session: Session) -> SuppressionHasher:
    """The install's suppression hasher, which its sessions carry (storage.db.session_factory).

    A session without one fails loudly: a hash under another key (or none) would match nothing,
    and a send would go to a suppressed address."""
    hasher = session.info.get(HASHER_KEY)
    if not isinstance(hasher, SuppressionHasher):
        raise ConfigError(
            "this database session has no suppression hash key "
            "(make sessions with storage.db.session_factory(engine, suppression_hasher))"
        )
    return hasher


def address_hash(session: Session, channel: Channel | str, address: str) -> str:
    """The suppression list's key for one address (for many, call hasher_of once)."""
    return hasher_of(session)(str(channel), address)


def active_suppression(
    session: Session, channel: Channel | str, address: str
) -> Suppression | None:
    return session.scalar(
        select(Suppression).where(
            Suppression.channel == str(channel),
            Suppression.address_hash == address_hash(session, channel, address),
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
    at: datetime,
) -> bool:
    """Add (or re-activate) one suppression; True if the address was not suppressed before."""
    row = NewSuppression(str(channel), address, str(reason), source, at)
    return bool(suppress_many(session, [row]))


def suppress_many(session: Session, rows: Sequence[NewSuppression]) -> set[tuple[str, str]]:
    """Add new suppressions and re-activate lifted ones in one statement; an active one is left
    as it is (its first reason is kept), so this is idempotent. Returns the (channel, address
    hash) keys that were not active before. Within `rows`, the first for an address counts."""
    wanted: dict[tuple[str, str], dict[str, object]] = {}
    hasher = hasher_of(session)
    for row in rows:
        key = (row.channel, hasher(row.channel, row.address))
        wanted.setdefault(
            key,
            {
                "channel": row.channel,
                "address_hash": key[1],
                "address": row.address,
                "reason": row.reason,
                "source": row.source,
                "created_at": row.at,
            },
        )
    if not wanted:
        return set()
    session.flush()
    upsert = _upsert(_dialect(session))
    # A row comes back only where one was inserted or re-activated (ON CONFLICT ... WHERE).
    # In key order: two transactions upserting the same addresses lock them in the same order
    # on PostgreSQL (two web processes, a webhook beside them), so neither waits on the other.
    rows_back = session.execute(upsert, [wanted[key] for key in sorted(wanted)])
    newly = {(str(channel), str(digest)) for channel, digest in rows_back}
    _expire_loaded(session, set(wanted))
    return newly


@cache
def _upsert(dialect: str) -> ReturningInsert[str, str]:
    """Add a suppression, or re-activate a lifted one; an active one is left alone. Built once
    per dialect (see contacts.optout: a statement built per batch cost more than it ran)."""
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    insert = dialect_insert(_TABLE)
    return insert.on_conflict_do_update(
        index_elements=[_TABLE.c.channel, _TABLE.c.address_hash],
        set_={
            "reason": insert.excluded.reason,
            "source": insert.excluded.source,
            "created_at": insert.excluded.created_at,
            # SQL NULLs, not Python Nones: a bound parameter in the SET clause makes
            # SQLAlchemy run an upsert with RETURNING one row a statement (its issue #13130),
            # where without one it sends the whole batch as one multi-row INSERT.
            "lifted_at": null(),
            "lifted_by": null(),
        },
        where=_TABLE.c.lifted_at.is_not(None),
    ).returning(_TABLE.c.channel, _TABLE.c.address_hash)


def lift_by_person(
    session: Session,
    channel: Channel | str,
    address: str,
    how: str,
    *,
    at: datetime,
) -> bool:
    """Lift a suppression because the person asked (START reply, preference page)."""
    row = active_suppression(session, channel, address)
    if row is None:
        return False
    if row.reason not in SELF_LIFTABLE:
        return False
    row.lifted_at = at
    row.lifted_by = how
    session.flush()
    return True


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _expire_loaded(session: Session, keys: set[tuple[str, str]]) -> None:
    """Rows written by the statement above behind the ORM's back: any the session has loaded
    are reloaded on their next use."""
    for loaded in list(session.identity_map.values()):
        if isinstance(loaded, Suppression) and (loaded.channel, loaded.address_hash) in keys:
            session.expire(loaded)
