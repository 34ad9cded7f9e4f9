"""CSV import of contacts (thin foundation version: the contacts issue deepens it)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from contacts.consent import record_consent
from contacts.normalize import normalize_email, normalize_phone, timezone_from_phone
from nurture.clock import utcnow
from nurture.db import transaction
from nurture.errors import InputError
from nurture.models import Channel, ConsentStatus, Contact

TRUE_WORDS = frozenset({"yes", "y", "true", "1", "opted_in", "opt-in", "x"})


@dataclass
class ImportSummary:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejects_path: Path | None = None


def _consents(row: dict[str, str], channel: str) -> tuple[bool, str]:
    given = (row.get(f"{channel}_consent") or "").strip().lower() in TRUE_WORDS
    return given, (row.get(f"{channel}_consent_evidence") or "").strip()


def import_csv(
    sessions: sessionmaker[Session],
    path: Path,
    source: str,
    *,
    default_timezone: str,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    summary = ImportSummary()
    rejects: list[tuple[int, str, dict[str, str]]] = []
    with path.open(newline="", encoding="utf-8-sig") as handle, transaction(sessions) as session:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"email", "phone"} & set(reader.fieldnames):
            raise InputError(f"{path}: needs an email or phone column")
        for line, row in enumerate(reader, start=2):
            try:
                outcome = _import_row(session, row, source, default_timezone)
            except InputError as exc:
                rejects.append((line, str(exc), row))
                summary.rejected += 1
                continue
            setattr(summary, outcome, getattr(summary, outcome) + 1)
            if progress:
                progress(1)
    if rejects:
        summary.rejects_path = path.with_name(path.stem + ".rejects.csv")
        with summary.rejects_path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["line", "reason", *rejects[0][2].keys()])
            for line, reason, row in rejects:
                writer.writerow([line, reason, *row.values()])
    return summary


def _import_row(session: Session, row: dict[str, str], source: str, default_tz: str) -> str:
    email = normalize_email(row["email"]) if (row.get("email") or "").strip() else None
    phone = normalize_phone(row["phone"]) if (row.get("phone") or "").strip() else None
    if email is None and phone is None:
        raise InputError("no email or phone")
    contact = None
    if email:
        contact = session.scalar(select(Contact).where(Contact.email == email))
    if contact is None and phone:
        contact = session.scalar(select(Contact).where(Contact.phone == phone))
    outcome = "unchanged"
    if contact is None:
        zone = (row.get("timezone") or "").strip() or (phone and timezone_from_phone(phone))
        contact = Contact(
            first_name=(row.get("first_name") or "").strip(),
            last_name=(row.get("last_name") or "").strip(),
            email=email,
            phone=phone,
            timezone=zone or default_tz,
            source=source,
        )
        session.add(contact)
        session.flush()
        outcome = "inserted"
    tags = [tag.strip() for tag in (row.get("tags") or "").replace(";", ",").split(",")]
    if contact.add_tags([tag for tag in tags if tag]) and outcome == "unchanged":
        outcome = "updated"
    at = utcnow()
    when = (row.get("consent_at") or "").strip()
    if when:
        try:
            at = datetime.fromisoformat(when)
        except ValueError:
            raise InputError(f"consent_at: not an ISO date: {when!r}") from None
    for channel in (Channel.EMAIL, Channel.SMS):
        given, evidence = _consents(row, channel)
        if not given or contact.consent_for(channel) == ConsentStatus.OPTED_IN:
            continue
        if channel == Channel.SMS and not evidence:
            continue  # TCPA: no written consent evidence, no texts
        record_consent(
            session,
            contact.id,
            channel,
            ConsentStatus.OPTED_IN,
            source=source,
            evidence=evidence or "imported opt-in",
            occurred_at=at,
        )
        if outcome == "unchanged":
            outcome = "updated"
    return outcome
