"""Writes a batch of clean rows in one short transaction: a few lookups, then bulk inserts.

Per batch: load the contacts any row's email or phone names and the active suppressions of every
address; rows that are simply new people go through contacts.fresh; the others merge in file
order (contacts.merge). New contacts, tags and consent events are written with executemany
(contacts.bulk). Opt-outs and
suppressions, which are rare, go through contacts.consent / contacts.suppressions so their rules
stay in one place. Short transactions keep SQLite's single write lock free for the dispatcher.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from contacts.bulk import executemany, json_dict, select_in
from contacts.consent import record_consent
from contacts.fresh import CONTACTS, EVENTS, TAGS, FreshRows, default_evidence, split_fresh
from contacts.merge import ContactState, MergeConflict, MergeResult, merge_row, new_contact
from contacts.rows import CleanRow, Consent
from contacts.suppressions import hasher_of, suppress
from storage.db import transaction
from storage.models import ConsentStatus

STATE_SQL = (
    "SELECT id, email, phone, first_name, last_name, timezone, custom_fields, email_consent,"
    " sms_consent, language FROM contacts WHERE "
)
#: A batch inserts at ~10,000 random places in each of the email and phone indexes; the pages
#: it dirties must fit the cache, or SQLite spills them to the WAL mid-transaction and reads
#: them back (16 MB: 50 s for the 1M-row bench; 32 MB: 39 s with the checkpoint below).
SQLITE_CACHE_KIB = 32 * 1024
#: WAL pages between checkpoints on the import's connection (SQLite's default is 1,000). Each
#: batch appends most index pages to the WAL again, and a checkpoint copies only the latest
#: copy of each page into the database: checkpointing every ~10 batches instead of every one
#: writes several times less. The WAL may grow to ~400 MB during an import; journal_size_limit
#: truncates it back once a checkpoint has emptied it.
SQLITE_CHECKPOINT_PAGES = 100_000
SQLITE_WAL_LIMIT_BYTES = 64 * 1024 * 1024
SQLITE_DEFAULT_CACHE, SQLITE_DEFAULT_CHECKPOINT = -2000, 1000  # https://sqlite.org/pragma.html
log = logging.getLogger("nurture.contacts.import")

IMPORT_LOCK = "SELECT pg_advisory_xact_lock(hashtext('nurture.contacts.import'))"
TAGS_SQL = "SELECT contact_id, tag FROM contact_tags WHERE contact_id"
ANY_SUPPRESSION_SQL = "SELECT 1 FROM suppressions WHERE lifted_at IS NULL LIMIT 1"
SUPPRESSIONS_SQL = "SELECT address_hash FROM suppressions WHERE lifted_at IS NULL AND address_hash"


@dataclass
class Slot:
    """One contact touched by the batch, with what the batch did to it."""

    state: ContactState
    original: ContactState
    fields_changed: bool = False
    new_tags: list[str] = field(default_factory=list)
    consents: list[tuple[str, Consent, int]] = field(default_factory=list)  # + line
    suppressions: list[tuple[str, str]] = field(default_factory=list)

    def absorb(self, result: MergeResult, line: int) -> None:
        self.state = result.state
        self.fields_changed |= result.fields_changed
        self.new_tags += result.new_tags
        self.consents += [(channel, consent, line) for channel, consent in result.consents]
        self.has_opt_out |= any(c.status == ConsentStatus.OPTED_OUT for _, c in result.consents)
        self.suppressions += result.suppressions

    @property
    def slow_consent(self) -> bool:
        """Opt-outs take the careful path (record_consent orders them against the ledger)."""
        return self.has_opt_out

    has_opt_out: bool = False


@dataclass
class RowOutcome:
    line: int
    outcome: str  # inserted | updated | unchanged | rejected
    reason: str = ""
    suppressions_kept: bool = False
    consent_kept: bool = False


@dataclass
class BatchWriter:
    sessions: sessionmaker[Session]
    source: str
    filename: str
    default_timezone: str
    now: datetime

    def finish(self) -> None:
        """SQLite: fold the import's WAL into the database now, rather than leave the next
        writer (a web request, the dispatcher) to copy up to SQLITE_CHECKPOINT_PAGES pages,
        and give the connection back with SQLite's default cache and checkpoint interval.
        (Best effort: it reaches the pooled connection the batches used when the import ran
        alone on its engine, as from the CLI. It runs after a failed import too, so its own
        failure is logged, never raised over the import's error.)"""
        session = self.sessions()
        try:
            if session.get_bind().dialect.name != "sqlite":
                return
            connection = session.connection()
            connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            connection.exec_driver_sql(f"PRAGMA cache_size = {SQLITE_DEFAULT_CACHE}")
            connection.exec_driver_sql(f"PRAGMA wal_autocheckpoint = {SQLITE_DEFAULT_CHECKPOINT}")
            session.commit()
        except SQLAlchemyError as exc:
            log.warning("could not checkpoint after the import: %s", exc)
        finally:
            session.close()

    def write(self, rows: list[CleanRow]) -> list[RowOutcome]:
        with transaction(self.sessions) as session:
            if session.get_bind().dialect.name == "postgresql":
                # Batches of concurrent imports take turns (SQLite's BEGIN IMMEDIATE does the
                # same), so each sees the people the other just added instead of inserting
                # them twice and failing on the unique email/phone.
                session.connection().exec_driver_sql(IMPORT_LOCK)
                # psycopg prepares statements it sees repeatedly and PostgreSQL then keeps a
                # generic plan made while the table was empty (a sequential scan): at ~100k
                # contacts every IN lookup would scan the table. Plan each lookup afresh.
                session.connection().exec_driver_sql(
                    "SET LOCAL plan_cache_mode = force_custom_plan"
                )
            if session.get_bind().dialect.name == "sqlite":
                # Index pages for a million contacts do not fit SQLite's default 2 MB cache;
                # inserts at random places in the email/phone indexes would re-read them.
                connection = session.connection()
                connection.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
                connection.exec_driver_sql(f"PRAGMA wal_autocheckpoint = {SQLITE_CHECKPOINT_PAGES}")
                connection.exec_driver_sql(f"PRAGMA journal_size_limit = {SQLITE_WAL_LIMIT_BYTES}")
            return self._write(session, rows)

    def _write(self, session: Session, rows: list[CleanRow]) -> list[RowOutcome]:
        by_email, by_phone = self._load(session, rows)
        suppressed = self._suppressed(session, rows)
        fresh, rows = split_fresh(rows, by_email.keys() | by_phone.keys(), suppressed)
        FreshRows(self.source, self.filename, self.default_timezone, self.now).insert(
            session, fresh
        )
        outcomes = [RowOutcome(row.line, "inserted") for row in fresh]
        slots: list[Slot] = []
        slot_of: dict[int, Slot] = {}
        for row in rows:
            match = (by_email.get(row.email) if row.email else None) or (
                by_phone.get(row.phone) if row.phone else None
            )
            other = by_phone.get(row.phone) if row.phone else None
            if match is not None and other is not None and other is not match:
                outcomes.append(
                    RowOutcome(
                        row.line,
                        "rejected",
                        "conflict: its email and its phone belong to two different contacts",
                    )
                )
                continue
            is_new = match is None
            state = match or new_contact(row, self.default_timezone)
            state.suppressed |= {
                ch
                for ch, addr in (("email", row.email), ("sms", row.phone))
                if addr and (ch, addr) in suppressed
            }
            try:
                result = merge_row(state, row)
            except MergeConflict as exc:
                outcomes.append(RowOutcome(row.line, "rejected", f"conflict: {exc}"))
                continue
            slot = slot_of.get(id(state))
            if slot is None:
                slot = Slot(state=state, original=state)
                slots.append(slot)
            slot.absorb(result, row.line)
            slot_of.pop(id(state), None)
            slot_of[id(result.state)] = slot
            for index, key in ((by_email, result.state.email), (by_phone, result.state.phone)):
                if key:
                    index[key] = result.state
            outcome = "inserted" if is_new else result.outcome
            outcomes.append(
                RowOutcome(
                    row.line,
                    outcome,
                    suppressions_kept=result.suppressions_kept,
                    consent_kept=result.consent_kept,
                )
            )
        self._save(session, slots)
        return outcomes

    def _load(
        self, session: Session, rows: list[CleanRow]
    ) -> tuple[dict[str, ContactState], dict[str, ContactState]]:
        emails = sorted({r.email for r in rows if r.email})
        phones = sorted({r.phone for r in rows if r.phone})
        states: dict[int, ContactState] = {}
        for column, values in (("email", emails), ("phone", phones)):
            for row in select_in(session, STATE_SQL + column, values):
                if row[0] not in states:
                    states[row[0]] = ContactState(
                        row[0], row[1], row[2], row[3], row[4], row[5],
                        set(), json_dict(row[6]), row[7], row[8], language=row[9],
                    )  # fmt: skip
        for contact_id, tag in select_in(session, TAGS_SQL, sorted(states)):
            states[contact_id].tags.add(tag)
        by_email = {s.email: s for s in states.values() if s.email}
        by_phone = {s.phone: s for s in states.values() if s.phone}
        return by_email, by_phone

    def _suppressed(self, session: Session, rows: list[CleanRow]) -> set[tuple[str, str]]:
        if session.connection().exec_driver_sql(ANY_SUPPRESSION_SQL).first() is None:
            return set()  # a first import: nothing to look up (and rows come without hashes)
        hasher = hasher_of(session)
        wanted = {r.email_hash or hasher("email", r.email): ("email", r.email)
                  for r in rows if r.email}  # fmt: skip
        wanted |= {r.phone_hash or hasher("sms", r.phone): ("sms", r.phone)
                   for r in rows if r.phone}  # fmt: skip
        found = select_in(session, SUPPRESSIONS_SQL, sorted(wanted))
        return {wanted[digest] for (digest,) in found}

    def _save(self, session: Session, slots: list[Slot]) -> None:
        fresh = [s for s in slots if s.original.id is None]
        if fresh:
            rows = [self._values(slot) | {"timezone": slot.state.timezone} for slot in fresh]
            for row in rows:
                row.update(source=self.source, created_at=self.now)
            executemany(session, CONTACTS, rows)
            self._fetch_ids(session, fresh)
        changed = [
            s
            for s in slots
            if s.original.id is not None
            and (s.fields_changed or (s.consents and not s.slow_consent))
        ]
        if changed:
            executemany(
                session, CONTACTS, [self._values(s) | {"id": s.state.id} for s in changed], key="id"
            )
        tags = [{"contact_id": s.state.id, "tag": t} for s in slots for t in s.new_tags]
        if tags:
            executemany(session, TAGS, tags)
        events = [self._event(s, *c) for s in slots if not s.slow_consent for c in s.consents]
        if events:
            executemany(session, EVENTS, events)
        for slot in slots:
            self._save_slow(session, slot)

    def _fetch_ids(self, session: Session, fresh: list[Slot]) -> None:
        by_email = {s.state.email: s for s in fresh if s.state.email}
        by_phone = {s.state.phone: s for s in fresh if not s.state.email}
        for column, index in (("email", by_email), ("phone", by_phone)):
            sql = f"SELECT {column}, id FROM contacts WHERE {column}"
            for key, contact_id in select_in(session, sql, sorted(index)):
                index[key].state.id = contact_id

    def _values(self, slot: Slot) -> dict[str, Any]:
        state, consent_from = slot.state, (slot.original if slot.slow_consent else slot.state)
        return {
            "email": state.email,
            "phone": state.phone,
            "first_name": state.first_name,
            "last_name": state.last_name,
            "custom_fields": state.custom,
            "email_consent": consent_from.email_consent,
            "sms_consent": consent_from.sms_consent,
            "language": state.language,
            "updated_at": self.now,
        }

    def _event(self, slot: Slot, channel: str, consent: Consent, line: int) -> dict[str, object]:
        return {
            "contact_id": slot.state.id,
            "channel": channel,
            "status": consent.status,
            "occurred_at": consent.at or self.now,
            "source": self.source,
            "evidence": consent.evidence or default_evidence(self.source, self.filename, line),
            "recorded_at": self.now,
        }

    def _save_slow(self, session: Session, slot: Slot) -> None:
        contact_id = slot.state.id
        assert contact_id is not None
        if slot.slow_consent:
            for channel, consent, line in slot.consents:
                record_consent(
                    session,
                    contact_id,
                    channel,
                    consent.status,
                    source=self.source,
                    evidence=consent.evidence or default_evidence(self.source, self.filename, line),
                    occurred_at=consent.at or self.now,
                )
        for channel, reason in slot.suppressions:
            address = slot.state.address(channel)
            if address:
                suppress(
                    session, channel, address, reason, source=f"import:{self.source}", at=self.now
                )
