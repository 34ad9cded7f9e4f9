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

from contacts.bulk import executemany, select_in
from contacts.rows import CleanRow
from nurture.models import ConsentEvent, ConsentStatus, Contact, ContactTag

OPTED_IN = ConsentStatus.OPTED_IN.value
MAX_ID_SQL = "SELECT coalesce(max(id), 0) FROM contacts"


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
        if not rows:
            return
        first_id = self._next_sqlite_id(session)
        executemany(session, Contact.__table__, [self._contact(row) for row in rows])
        ids = self._sqlite_ids(session, first_id, len(rows)) or self._ids(session, rows)
        tags = [
            {"contact_id": ids[i], "tag": tag} for i, row in enumerate(rows) for tag in row.tags
        ]
        if tags:
            executemany(session, ContactTag.__table__, tags)
        events = [
            self._event(ids[i], channel, row)
            for i, row in enumerate(rows)
            for channel, consent in (("email", row.email_consent), ("sms", row.sms_consent))
            if consent is not None
        ]
        if events:
            executemany(session, ConsentEvent.__table__, events)

    def _contact(self, row: CleanRow) -> dict[str, Any]:
        return {
            "email": row.email,
            "phone": row.phone,
            "first_name": row.first_name,
            "last_name": row.last_name,
            "timezone": row.timezone or row.phone_zone or self.default_timezone,
            "custom_fields": row.custom,
            "email_consent": OPTED_IN if row.email_consent else None,
            "sms_consent": OPTED_IN if row.sms_consent else None,
            "source": self.source,
            "created_at": self.now,
            "updated_at": self.now,
        }

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
        last = session.connection().exec_driver_sql(MAX_ID_SQL).scalar_one()
        return list(range(first_id, first_id + count)) if last == first_id + count - 1 else None

    def _ids(self, session: Session, rows: list[CleanRow]) -> list[int]:
        by_email = select_in(session, "SELECT email, id FROM contacts WHERE email",
                             [row.email for row in rows if row.email])  # fmt: skip
        by_phone = select_in(session, "SELECT phone, id FROM contacts WHERE phone",
                             [row.phone for row in rows if not row.email])  # fmt: skip
        found = dict(by_email) | dict(by_phone)
        return [found[row.email or row.phone] for row in rows]

    def _event(self, contact_id: int, channel: str, row: CleanRow) -> dict[str, Any]:
        consent = row.email_consent if channel == "email" else row.sms_consent
        assert consent is not None
        return {
            "contact_id": contact_id,
            "channel": channel,
            "status": consent.status,
            "occurred_at": consent.at or self.now,
            "source": self.source,
            "evidence": consent.evidence or default_evidence(self.source, self.filename, row.line),
            "recorded_at": self.now,
        }


def default_evidence(source: str, filename: str, line: int) -> str:
    """What an opt-in without stated evidence records: where exactly it came from."""
    return f"marked opted in by the {source!r} import of {filename}, line {line}"
