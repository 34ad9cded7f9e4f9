"""Helpers for the contacts tests: write a CSV, import it into the test app, read contacts back."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from contacts.importer import ImportSummary, import_csv
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import ConsentEvent, Contact, Suppression

HEADER = ["first_name", "last_name", "email", "phone", "timezone", "tags", "email_consent",
          "email_consent_evidence", "sms_consent", "sms_consent_evidence"]  # fmt: skip
SMS_PROOF = 'Web form: "I agree to receive marketing texts" (checked)'


def csv_text(rows: list[dict[str, str]], header: list[str] | None = None) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header or HEADER, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return out.getvalue()


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    def write(content: str | bytes | list[dict[str, str]], name: str = "contacts.csv",
              header: list[str] | None = None) -> Path:  # fmt: skip
        path = tmp_path / name
        if isinstance(content, list):
            content = csv_text(content, header)
        if isinstance(content, str):
            content = content.encode("utf-8")
        path.write_bytes(content)
        return path

    return write


@pytest.fixture
def run_import(nurture_app: NurtureApp) -> Callable[..., ImportSummary]:
    def run(path: Path, source: str = "website-form", **options: Any) -> ImportSummary:
        options.setdefault("default_timezone", "America/Los_Angeles")
        return import_csv(nurture_app.sessions, path, source, clock=nurture_app.clock, **options)

    return run


@pytest.fixture
def snapshot(nurture_app: NurtureApp) -> Callable[[], dict[str, Any]]:
    """Everything an import can touch, to prove a second import changed nothing."""

    def take() -> dict[str, Any]:
        with transaction(nurture_app.sessions, immediate=False) as session:
            contacts = [
                (c.id, c.email, c.phone, c.first_name, c.last_name, c.timezone, c.tags,
                 c.custom_fields, c.email_consent, c.sms_consent, c.updated_at)
                for c in session.scalars(select(Contact).order_by(Contact.id))
            ]  # fmt: skip
            ledger = session.execute(
                select(ConsentEvent.contact_id, ConsentEvent.channel, ConsentEvent.status,
                       ConsentEvent.occurred_at, ConsentEvent.evidence).order_by(ConsentEvent.id)
            ).all()  # fmt: skip
            suppressions = session.execute(
                select(Suppression.address_hash, Suppression.reason, Suppression.lifted_at)
                .order_by(Suppression.id)
            ).all()  # fmt: skip
            return {"contacts": contacts, "ledger": ledger, "suppressions": suppressions}

    return take


@pytest.fixture
def count_contacts(nurture_app: NurtureApp) -> Callable[[], int]:
    def count() -> int:
        with transaction(nurture_app.sessions, immediate=False) as session:
            return session.scalar(select(func.count()).select_from(Contact)) or 0

    return count
