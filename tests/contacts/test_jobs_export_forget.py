"""Import jobs for the dashboard, export with consent and suppressions, and forget."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from contacts.export import ExportFilter, export_csv, export_to_file
from contacts.forget import forget_contact
from contacts.jobs import run_import_job, start_import_job
from contacts.optout import opt_in_again, opt_out
from contacts.search import Search, find_contact, search_contacts
from contacts.suppressions import active_suppression, address_hash, is_suppressed
from core.errors import InputError, NotFound
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import ConsentEvent, Contact, ContactTag, ImportJob, Suppression

SMS_PROOF = "Signed intake form: text me"
ROWS = [
    {"first_name": "Maria", "last_name": "Lopez", "email": "maria@example.com",
     "phone": "(310) 555-0101", "tags": "web;spasm", "email_consent": "yes",
     "sms_consent": "yes", "sms_consent_evidence": SMS_PROOF, "insurance": "Aetna"},
    {"first_name": "James", "last_name": "Carter", "email": "james@example.com",
     "email_consent": "yes", "tags": "event", "insurance": ""},
]  # fmt: skip
HEADER = list(ROWS[0])


def test_import_job_records_progress_counts_and_rejects(
    nurture_app: NurtureApp, write_csv: Callable[..., Path]
) -> None:
    path = write_csv([*ROWS, {"email": "nope"}], header=HEADER)
    job_id = start_import_job(nurture_app.sessions, path, "website-form")
    summary = run_import_job(
        nurture_app.sessions, job_id, path, "website-form", default_timezone="America/Los_Angeles"
    )
    assert summary is not None
    with transaction(nurture_app.sessions, immediate=False) as session:
        job = session.get(ImportJob, job_id)
        assert job is not None and job.status == "finished" and job.error is None
        assert (job.total_rows, job.processed_rows) == (3, 3)
        assert job.counts["inserted"] == 2 and job.counts["rejected"] == 1
        assert job.rejects_path == str(path.with_name("contacts.rejects.csv"))
        assert job.finished_at is not None


def test_import_job_failure_is_recorded_with_a_message(
    nurture_app: NurtureApp, write_csv: Callable[..., Path]
) -> None:
    path = write_csv("first_name\nAna\n")
    job_id = start_import_job(nurture_app.sessions, path, "events")
    assert run_import_job(nurture_app.sessions, job_id, path, "events",
                          default_timezone="UTC") is None  # fmt: skip
    with transaction(nurture_app.sessions, immediate=False) as session:
        job = session.get(ImportJob, job_id)
        assert job is not None and job.status == "failed"
        assert "no email or phone column" in (job.error or "")
    with pytest.raises(NotFound):
        run_import_job(nurture_app.sessions, 999, path, "events", default_timezone="UTC")


def _exported(app: NurtureApp, which: ExportFilter | None = None) -> list[dict[str, str]]:
    out = io.StringIO()
    with transaction(app.sessions, immediate=False) as session:
        export_csv(session, out, which)
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def test_export_shows_consent_evidence_and_suppression(
    nurture_app: NurtureApp, write_csv: Callable[..., Path], run_import: Callable[..., Any]
) -> None:
    run_import(write_csv(ROWS, header=HEADER))
    with transaction(nurture_app.sessions) as session:
        james = find_contact(session, "james@example.com")
        opt_out(session, james, "email", reason="unsubscribed", source="preferences",
                at=nurture_app.clock())  # fmt: skip
    rows = {row["email"]: row for row in _exported(nurture_app)}
    maria, james_row = rows["maria@example.com"], rows["james@example.com"]
    assert maria["phone"] == "+13105550101" and maria["tags"] == "spasm;web"
    assert maria["sms_consent"] == "opted_in" and maria["sms_consent_evidence"] == SMS_PROOF
    assert maria["insurance"] == "Aetna" and maria["email_suppression"] == ""
    assert james_row["email_consent"] == "opted_out"
    assert james_row["email_suppression"] == "unsubscribed"
    only_sms = _exported(nurture_app, ExportFilter(consent="sms"))
    assert [row["email"] for row in only_sms] == ["maria@example.com"]
    assert [row["email"] for row in _exported(nurture_app, ExportFilter(tag="event"))] == [
        "james@example.com"
    ]


def test_an_export_imports_again_with_the_same_state(
    nurture_app: NurtureApp,
    write_csv: Callable[..., Path],
    run_import: Callable[..., Any],
    snapshot: Callable[[], Any],
    tmp_path: Path,
) -> None:
    run_import(write_csv(ROWS, header=HEADER))
    with transaction(nurture_app.sessions) as session:
        james = find_contact(session, "james@example.com")
        opt_out(session, james, "email", source="preferences", at=nurture_app.clock())
    exported = tmp_path / "export.csv"
    with transaction(nurture_app.sessions, immediate=False) as session:
        assert export_to_file(session, exported, ExportFilter()) == 2
    assert exported.stat().st_mode & 0o077 == 0  # personal data: owner only
    before = snapshot()
    summary = run_import(exported)
    assert (summary.unchanged, summary.rejected, summary.custom_fields) == (2, 0, ["insurance"])
    assert snapshot() == before


def test_forget_erases_personal_data_and_keeps_a_hashed_suppression(
    nurture_app: NurtureApp, write_csv: Callable[..., Path], run_import: Callable[..., Any]
) -> None:
    path = write_csv(ROWS, header=HEADER)
    run_import(path)
    with transaction(nurture_app.sessions) as session:
        maria = find_contact(session, "(310) 555-0101")
        result = forget_contact(
            session, maria, requested_by="email from Maria", now=nurture_app.clock(),
            files=nurture_app.personal_files,
        )  # fmt: skip
        assert sorted(result.suppressed) == ["email", "sms"]
    with transaction(nurture_app.sessions, immediate=False) as session:
        gone = session.get(Contact, result.contact_id)
        assert gone is not None and gone.erased_at is not None
        assert (gone.email, gone.phone, gone.first_name, gone.custom_fields) == (None, None, "", {})
        assert not session.scalars(
            select(ConsentEvent).where(ConsentEvent.contact_id == gone.id)
        ).all()
        assert not session.scalars(select(ContactTag).where(ContactTag.contact_id == gone.id)).all()
        rows = session.scalars(select(Suppression)).all()
        assert {(r.channel, r.address, r.reason) for r in rows} == {
            ("email", None, "forgotten"),
            ("sms", None, "forgotten"),
        }
        assert rows[0].address_hash == address_hash(session, "email", "maria@example.com")
        assert is_suppressed(session, "email", "maria@example.com")
        with pytest.raises(InputError, match="already forgotten"):
            forget_contact(session, gone, requested_by="again", now=nurture_app.clock(), files=())
    # The same file again: Maria comes back as a new contact, still suppressed, not opted in.
    summary = run_import(path)
    assert (summary.inserted, summary.suppressions_kept) == (1, 1)
    with transaction(nurture_app.sessions, immediate=False) as session:
        back = find_contact(session, "maria@example.com")
        assert (back.email_consent, back.sms_consent) == (None, None)
        assert active_suppression(session, "sms", "+13105550101") is not None


def test_only_the_person_can_lift_a_suppression(
    nurture_app: NurtureApp, write_csv: Callable[..., Path], run_import: Callable[..., Any]
) -> None:
    run_import(write_csv(ROWS, header=HEADER))
    with transaction(nurture_app.sessions) as session:
        maria = find_contact(session, "maria@example.com")
        opt_out(session, maria, "sms", reason="stop", source="twilio", at=nurture_app.clock())
    run_import(write_csv(ROWS, header=HEADER, name="again.csv"))
    with transaction(nurture_app.sessions) as session:
        maria = find_contact(session, "maria@example.com")
        assert is_suppressed(session, "sms", maria.phone)
        later = nurture_app.clock() + timedelta(minutes=1)  # a tie with the STOP goes to STOP
        opt_in_again(
            session,
            maria,
            "sms",
            how="START reply",
            evidence="START",
            at=later,
            replied_from=maria.phone,
        )
        assert not is_suppressed(session, "sms", maria.phone)


def test_search_by_name_email_phone_tag_and_consent(
    nurture_app: NurtureApp, write_csv: Callable[..., Path], run_import: Callable[..., Any]
) -> None:
    run_import(write_csv(ROWS, header=HEADER))
    with transaction(nurture_app.sessions, immediate=False) as session:

        def names(search: Search) -> list[str]:
            return [c.first_name for c in search_contacts(session, search)[0]]

        assert names(Search("lopez")) == ["Maria"]
        assert names(Search("JAMES@")) == ["James"]
        assert names(Search("555-0101")) == ["Maria"]
        assert names(Search(tag="event")) == ["James"]
        assert names(Search(consent="sms")) == ["Maria"]
        assert names(Search("", limit=1)) == ["Maria"]
        assert search_contacts(session, Search("", limit=1))[1] == 2
        with pytest.raises(NotFound):
            find_contact(session, "nobody@example.com")
        with pytest.raises(InputError):
            find_contact(session, "not a reference")
