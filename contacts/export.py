"""CSV export of contacts with their current consent (and its proof) and suppression state.

The columns are the ones the importer understands, so an export imports again unchanged into
another database (suppressions and opt-outs included). Read page by page (keyset on id), so any
number of contacts streams in bounded memory. The file holds personal data: it is created
readable by its owner only. Cells a spreadsheet would run as a formula (`=`, `+`, `-`, `@`...)
are escaped (core.csv_safety, OWASP CSV injection); the importer reads them back unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Select, exists, select
from sqlalchemy.orm import Session

from contacts.suppressions import hasher_of
from core.csv_safety import csv_writer
from storage.models import ConsentEvent, Contact, ContactTag, Suppression

PAGE = 1000
CHANNELS = ("email", "sms")
BASE_COLUMNS = ["id", "first_name", "last_name", "email", "phone", "timezone", "tags", "source",
                "created_at"]  # fmt: skip
CONSENT_COLUMNS = [
    f"{channel}_{what}"
    for channel in CHANNELS
    for what in ("consent", "consent_at", "consent_source", "consent_evidence", "suppression")
]


@dataclass(frozen=True)
class ExportFilter:
    tag: str | None = None
    consent: str | None = None  # "email" | "sms": only contacts opted in on that channel


def export_csv(session: Session, out: IO[str], which: ExportFilter | None = None) -> int:
    """Write the CSV to `out`; returns the number of contacts written."""
    which = which or ExportFilter()
    custom = sorted(_custom_keys(session, which))
    writer = csv_writer(out)
    writer.writerow(BASE_COLUMNS + CONSENT_COLUMNS + custom)
    count = 0
    for page in _pages(session, which):
        ids = [c.id for c in page]
        tags = _tags(session, ids)
        consents = _latest_consents(session, ids)
        suppressed = _suppressions(session, page)
        for contact in page:
            row: list[Any] = [
                contact.id, contact.first_name, contact.last_name, contact.email or "",
                contact.phone or "", contact.timezone, ";".join(tags.get(contact.id, [])),
                contact.source, contact.created_at.isoformat(),
            ]  # fmt: skip
            for channel in CHANNELS:
                event = consents.get((contact.id, channel))
                row += [
                    event.status if event else "",
                    event.occurred_at.isoformat() if event else "",
                    event.source if event else "",
                    event.evidence if event else "",
                    suppressed.get((channel, contact.address(channel) or ""), ""),
                ]
            row += [(contact.custom_fields or {}).get(key, "") for key in custom]
            writer.writerow(row)
            count += 1
    return count


def export_to_file(session: Session, path: Path, which: ExportFilter | None = None) -> int:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(descriptor, "w", newline="", encoding="utf-8") as out:
        return export_csv(session, out, which)


def _query(which: ExportFilter) -> Select[Contact]:
    query = select(Contact).where(Contact.erased_at.is_(None))
    if which.tag:
        query = query.where(
            exists().where(ContactTag.contact_id == Contact.id, ContactTag.tag == which.tag)
        )
    if which.consent:
        query = query.where(getattr(Contact, f"{which.consent}_consent") == "opted_in")
    return query


def _pages(session: Session, which: ExportFilter) -> Iterator[list[Contact]]:
    last = 0
    while True:
        page = list(
            session.scalars(_query(which).where(Contact.id > last).order_by(Contact.id).limit(PAGE))
        )
        if not page:
            return
        yield page
        last = page[-1].id
        session.expunge_all()


def _custom_keys(session: Session, which: ExportFilter) -> set[str]:
    keys: set[str] = set()
    query = _query(which).with_only_columns(Contact.custom_fields)
    fields: dict[str, str] | None
    for fields in session.scalars(query.execution_options(yield_per=PAGE)):
        keys.update(fields or {})
    return keys


def _tags(session: Session, ids: list[int]) -> dict[int, list[str]]:
    tags: dict[int, list[str]] = {}
    query = select(ContactTag.contact_id, ContactTag.tag).where(ContactTag.contact_id.in_(ids))
    for contact_id, tag in session.execute(query.order_by(ContactTag.tag)):
        tags.setdefault(contact_id, []).append(tag)
    return tags


def _latest_consents(session: Session, ids: list[int]) -> dict[tuple[int, str], ConsentEvent]:
    """The current event per contact and channel: latest occurred_at, then latest id."""
    latest: dict[tuple[int, str], ConsentEvent] = {}
    query = (
        select(ConsentEvent)
        .where(ConsentEvent.contact_id.in_(ids))
        .order_by(ConsentEvent.occurred_at, ConsentEvent.id)
    )
    for event in session.scalars(query):
        latest[(event.contact_id, event.channel)] = event
    return latest


def _suppressions(session: Session, page: list[Contact]) -> dict[tuple[str, str], str]:
    hasher = hasher_of(session)
    wanted = {
        hasher(channel, address): (channel, address)
        for contact in page
        for channel in CHANNELS
        if (address := contact.address(channel))
    }
    query = select(Suppression.address_hash, Suppression.reason).where(
        Suppression.address_hash.in_(list(wanted)), Suppression.lifted_at.is_(None)
    )
    return {wanted[digest]: reason for digest, reason in session.execute(query)}
