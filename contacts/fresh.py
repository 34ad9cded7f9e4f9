"""The fast path for rows that are simply new people: most rows of a first import.

A row whose email and phone appear once in its batch, match no contact and no suppression, and
carry only opt-ins is exactly what contacts.merge would make of it on an empty contact, so it is
written straight from the row without the merge bookkeeping. Anything else (a duplicate, a known
person, a suppressed address, an opt-out) takes the general path; tests/contacts checks that both
paths store the same thing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from contacts.bulk import copy_tuples, insert_tuples, select_in, stored_form
from contacts.rows import CleanRow
from core.languages import DEFAULT_LANGUAGE
from storage.models import Base, ConsentEvent, ConsentStatus, Contact, ContactTag

OPTED_IN = ConsentStatus.OPTED_IN.value
# The tables the import writes, as Tables (declarative types `Model.__table__` as any FromClause).
CONTACTS = Base.metadata.tables[Contact.__tablename__]
TAGS = Base.metadata.tables[ContactTag.__tablename__]
EVENTS = Base.metadata.tables[ConsentEvent.__tablename__]
CONTACT_COLUMNS = (
    "email", "phone", "first_name", "last_name", "timezone", "custom_fields",
    "email_consent", "sms_consent", "source", "created_at", "updated_at", "language",
)  # fmt: skip
EVENT_COLUMNS = (
    "contact_id", "channel", "status", "occurred_at", "source", "evidence", "recorded_at",
)  # fmt: skip
MAX_ID_SQL = "SELECT coalesce(max(id), 0) FROM contacts"
PG_IDS_SQL = "SELECT nextval(pg_get_serial_sequence('contacts', 'id')) FROM generate_series(1, %s)"


def split_fresh(
    rows: list[CleanRow],
    known: set[str],
    suppressed: set[tuple[str, str]],
) -> tuple[list[CleanRow], list[CleanRow]]:
    """(rows for brand-new people, every other row in file order)."""
    seen = Counter(key for row in rows for key in (row.email, row.phone) if key)
    fresh: list[CleanRow] = []
    rest: list[CleanRow] = []
    for row in rows:
        simple = (
            not row.email_suppression
            and not row.sms_suppression
            and (row.email_consent is None or row.email_consent.status == OPTED_IN)
            and (row.sms_consent is None or row.sms_consent.status == OPTED_IN)
            and all(
                seen[address] == 1 and address not in known and (channel, address) not in suppressed
                for channel, address in (("email", row.email), ("sms", row.phone))
                if address
            )
        )
        (fresh if simple else rest).append(row)
    return fresh, rest


@dataclass
class FreshRows:
    """Inserts new contacts, their tags and consent events from rows, in bulk."""

    source: str
    filename: str
    default_timezone: str
    now: datetime

    def insert(self, session: Session, rows: list[CleanRow]) -> None:
        """Rows go straight to DB-API tuples, with no dict per row: this runs in the writing
        process, the import's bottleneck. Values are converted by the columns' own bind
        processors (contacts.bulk.stored_form), except custom fields: a CleanRow carries them
        as JSON text already, made on a worker's core."""
        if not rows:
            return
        now = stored_form(session, CONTACTS.c.created_at, self.now)
        default_zone, source = self.default_timezone, self.source
        postgres = session.get_bind().dialect.name == "postgresql"
        first_id = self._next_sqlite_id(session)
        contacts = [
            (row.email, row.phone, row.first_name, row.last_name,
             row.timezone or row.phone_zone or default_zone, row.custom_json,
             OPTED_IN if row.email_consent else None, OPTED_IN if row.sms_consent else None,
             source, now, now, row.language or DEFAULT_LANGUAGE)
            for row in rows
        ]  # fmt: skip
        if postgres:
            # Ids drawn from the sequence up front, then COPY (several times faster than
            # INSERTs): no lookup afterwards to learn which id each new contact got.
            drawn = session.connection().exec_driver_sql(PG_IDS_SQL, (len(rows),))
            ids: list[int] = list(drawn.scalars())
            copy_tuples(session, CONTACTS, ("id", *CONTACT_COLUMNS),
                        [(i, *c) for i, c in zip(ids, contacts, strict=True)])  # fmt: skip
        else:
            insert_tuples(session, CONTACTS, CONTACT_COLUMNS, contacts)
            ids = self._sqlite_ids(session, first_id, len(rows)) or self._ids(session, rows)
        write = copy_tuples if postgres else insert_tuples
        tags = [(ids[i], tag) for i, row in enumerate(rows) for tag in row.tags]
        if tags:
            write(session, TAGS, ("contact_id", "tag"), tags)
        when: dict[datetime | None, Any] = {}
        for consent in {c for row in rows for c in (row.email_consent, row.sms_consent) if c}:
            when.setdefault(consent.at, stored_form(session, EVENTS.c.occurred_at,
                                                    consent.at or self.now))  # fmt: skip
        events = [
            (ids[i], channel, consent.status, when[consent.at], source,
             consent.evidence or default_evidence(source, self.filename, row.line), now)
            for i, row in enumerate(rows)
            for channel, consent in (("email", row.email_consent), ("sms", row.sms_consent))
            if consent is not None
        ]  # fmt: skip
        if events:
            write(session, EVENTS, EVENT_COLUMNS, events)

    @staticmethod
    def _next_sqlite_id(session: Session) -> int | None:
        if session.get_bind().dialect.name != "sqlite":
            return None
        return int(session.connection().exec_driver_sql(MAX_ID_SQL).scalar_one()) + 1

    @staticmethod
    def _sqlite_ids(session: Session, first_id: int | None, count: int) -> list[int] | None:
        """SQLite gives a row without an id the largest id so far plus one
        (https://sqlite.org/autoinc.html), and this transaction holds the write lock, so the
        batch got first_id .. first_id + count - 1 in order. Checked: if the largest id is not
        where that puts it, the ids are looked up by email and phone instead."""
        if first_id is None:
            return None
        last: int = session.connection().exec_driver_sql(MAX_ID_SQL).scalar_one()
        return list(range(first_id, first_id + count)) if last == first_id + count - 1 else None

    def _ids(self, session: Session, rows: list[CleanRow]) -> list[int]:
        by_email = select_in(session, "SELECT email, id FROM contacts WHERE email",
                             [row.email for row in rows if row.email])  # fmt: skip
        by_phone = select_in(session, "SELECT phone, id FROM contacts WHERE phone",
                             [row.phone for row in rows if not row.email])  # fmt: skip
        found = dict(by_email) | dict(by_phone)
        return [found[row.email or row.phone] for row in rows]


def default_evidence(source: str, filename: str, line: int) -> str:
    """What an opt-in without stated evidence records: where exactly it came from."""
    return f"marked opted in by the {source!r} import of {filename}, line {line}"
