"""Durable unsubscribes in bulk: what `contacts.optout.opt_out` does, for a whole batch at once.

RFC 8058 one-click unsubscribes arrive in bursts (a mailbox provider replaying a spam-folder
sweep, a big send's footer clicks). Each must be committed before its 200, so the web server
group-commits them (web.group_commit) and applies a batch with a handful of set-based statements
instead of a dozen ORM round trips per person. The rows written are the same as opt_out's (a
test holds the two together): an active suppression keyed by the address hash, an `opted_out`
consent-ledger entry when consent was not already withdrawn, and an `unsubscribed` event.

On SQLite the writer has its own connection (sqlite_rows.WriterConnection) with synchronous=FULL,
so a commit survives a power cut, not only a crash; one fsync then covers the whole batch.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from contacts.suppressions import address_hash
from core.clock import utcnow
from storage.models import (
    Channel,
    ConsentEvent,
    ConsentStatus,
    Contact,
    Event,
    Suppression,
    SuppressionReason,
)
from web import sqlite_rows


@dataclass(frozen=True)
class Unsubscribe:
    contact_id: int
    channel: Channel
    source: str
    at: datetime | None = None  # None: the commit's time, one instant for the whole batch
    reason: SuppressionReason = SuppressionReason.UNSUBSCRIBED


class UnsubscribeWriter:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        dialect = engine.dialect.name
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        url = engine.url
        file_db = dialect == "sqlite" and url.database not in (None, "", ":memory:")
        self._writer = (
            sqlite_rows.WriterConnection(url.database, synchronous="FULL") if file_db else None
        )

    @property
    def quiet_checkpoints(self) -> bool:
        """True while a sqlite_rows.Checkpointer runs: the writer's commits leave them to it."""
        return self._writer is not None and self._writer.quiet_checkpoints

    @quiet_checkpoints.setter
    def quiet_checkpoints(self, quiet: bool) -> None:
        if self._writer is not None:
            self._writer.quiet_checkpoints = quiet

    def __call__(self, batch: Sequence[Unsubscribe]) -> None:
        if self._writer is None:
            with self.engine.connect() as connection, connection.begin():
                apply_unsubscribes(connection, batch, self._insert, raw=None)
            return
        with self._writer.transaction() as raw:
            apply_unsubscribes(None, batch, self._insert, raw=raw)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def apply_unsubscribes(
    connection: Connection | None,
    batch: Sequence[Unsubscribe],
    dialect_insert: Any,
    *,
    raw: sqlite3.Connection | None,
) -> None:
    """Through SQLAlchemy `connection`, or on SQLite through the driver connection `raw`."""
    now = utcnow()
    wanted = {(item.contact_id, str(item.channel)): item for item in batch}
    ids = sorted({contact_id for contact_id, _ in wanted})
    if raw is not None:
        found: list[Any] = sqlite_rows.contact_rows(raw, ids)
    else:
        assert connection is not None
        found = list(
            connection.execute(
                select(
                    Contact.id,
                    Contact.email,
                    Contact.phone,
                    Contact.email_consent,
                    Contact.sms_consent,
                ).where(Contact.id.in_(ids))
            )
        )
    contacts = {row[0]: _ContactRow(*row) for row in found}
    suppressions, consents, consent_columns, events = [], [], [], []
    for (contact_id, channel), item in wanted.items():
        contact = contacts.get(contact_id)
        address = (
            None if contact is None else (contact.email if channel == "email" else contact.phone)
        )
        if contact is None or address is None:
            continue
        at = item.at or now
        suppressions.append(
            {
                "channel": channel,
                "address_hash": address_hash(channel, address),
                "address": address,
                "reason": str(item.reason),
                "source": item.source,
                "created_at": at,
            }
        )
        current = contact.email_consent if channel == "email" else contact.sms_consent
        if current != ConsentStatus.OPTED_OUT:
            consents.append(
                {
                    "contact_id": contact_id,
                    "channel": channel,
                    "status": str(ConsentStatus.OPTED_OUT),
                    "occurred_at": at,
                    "source": item.source,
                    "evidence": f"{item.reason} via {item.source}",
                    "recorded_at": at,
                }
            )
            consent_columns.append((channel, contact_id, at))
        events.append(
            {
                "kind": "unsubscribed",
                "occurred_at": at,
                "contact_id": contact_id,
                "channel": channel,
                "data": {"reason": str(item.reason), "source": item.source},
            }
        )
    if raw is not None:
        sqlite_rows.write_unsubscribes(raw, suppressions, consents, consent_columns, events)
        return
    assert connection is not None
    if suppressions:
        _suppress(connection, suppressions, dialect_insert)
    if consents:
        connection.execute(insert(ConsentEvent.__table__), consents)
        table = Contact.__table__
        for channel in ("email", "sms"):
            ids_at = [{"cid": cid, "at": at} for ch, cid, at in consent_columns if ch == channel]
            if ids_at:
                connection.execute(
                    update(table)
                    .where(table.c.id == bindparam("cid"))
                    .values(
                        {
                            f"{channel}_consent": str(ConsentStatus.OPTED_OUT),
                            "updated_at": bindparam("at"),
                        }
                    ),
                    ids_at,
                )
    if events:
        connection.execute(insert(Event.__table__), events)


class _ContactRow(NamedTuple):
    id: int
    email: str | None
    phone: str | None
    email_consent: str | None
    sms_consent: str | None


def _suppress(connection: Connection, rows: list[dict[str, Any]], dialect_insert: Any) -> None:
    """Insert new suppressions; re-activate lifted ones; leave active ones (first reason kept)."""
    table = Suppression.__table__
    statement = dialect_insert(table)
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.channel, table.c.address_hash],
        set_={
            "reason": excluded.reason,
            "source": excluded.source,
            "created_at": excluded.created_at,
            "lifted_at": None,
            "lifted_by": None,
        },
        where=table.c.lifted_at.is_not(None),
    )
    connection.execute(statement, rows)
