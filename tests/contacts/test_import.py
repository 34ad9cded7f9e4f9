"""CSV import on SQLite and PostgreSQL: counts, merge, consent, suppressions, rejects, re-import."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from contacts import importer
from contacts.columns import ColumnMapping
from contacts.optout import opt_out
from contacts.suppressions import active_suppression, suppress
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import ConsentEvent, Contact, Suppression

Rows = list[dict[str, str]]
NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
SMS_PROOF = 'Web form: "I agree to receive marketing texts" (checked)'


def contact(app: NurtureApp, email: str | None = None, phone: str | None = None) -> Contact:
    with transaction(app.sessions, immediate=False) as session:
        column = Contact.email if email else Contact.phone
        found = session.scalar(select(Contact).where(column == (email or phone)))
        assert found is not None, f"no contact {email or phone}"
        found.tags  # noqa: B018 - load before the session closes
        return found


def ledger(app: NurtureApp, contact_id: int) -> list[tuple[str, str, str]]:
    with transaction(app.sessions, immediate=False) as session:
        rows = session.execute(
            select(ConsentEvent.channel, ConsentEvent.status, ConsentEvent.evidence)
            .where(ConsentEvent.contact_id == contact_id)
            .order_by(ConsentEvent.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


PEOPLE: Rows = [
    {"first_name": "Maria", "last_name": "Lopez", "email": "Maria.Lopez@Example.com",
     "phone": "(310) 555-0101", "timezone": "America/New_York", "tags": "web; spasm",
     "email_consent": "yes", "email_consent_evidence": "Website form", "sms_consent": "yes",
     "sms_consent_evidence": SMS_PROOF},
    {"first_name": "James", "email": "james@example.com", "phone": "+1 212 555 0102",
     "email_consent": "yes", "sms_consent": "yes", "sms_consent_evidence": ""},
    {"first_name": "Aiko", "email": "aiko@example.com", "tags": "event"},
    {"first_name": "Luis", "phone": "818.555.0104", "sms_consent": "y",
     "sms_consent_evidence": SMS_PROOF},
]  # fmt: skip


def test_import_normalises_and_records_consent_with_evidence(
    nurture_app: NurtureApp, write_csv: Callable[..., Path], run_import: Callable[..., Any]
) -> None:
    summary = run_import(write_csv(PEOPLE), default_timezone="America/Denver")
    assert (summary.inserted, summary.updated, summary.unchanged, summary.rejected) == (4, 0, 0, 0)
    assert summary.sms_without_evidence == 1 and summary.rejects_path is None

    maria = contact(nurture_app, email="maria.lopez@example.com")
    assert maria.phone == "+13105550101" and maria.timezone == "America/New_York"  # as given
    assert maria.tags == ["spasm", "web"] and maria.source == "website-form"
    assert (maria.email_consent, maria.sms_consent) == ("opted_in", "opted_in")
    assert ("sms", "opted_in", SMS_PROOF) in ledger(nurture_app, maria.id)

    james = contact(nurture_app, email="james@example.com")
    assert james.timezone == "America/New_York"  # from the 212 number
    assert james.email_consent == "opted_in"
    assert james.sms_consent is None  # TCPA: "yes" without written evidence opts nobody in
    (event,) = ledger(nurture_app, james.id)
    assert event[:2] == ("email", "opted_in") and "contacts.csv, line 3" in event[2]

    aiko = contact(nurture_app, email="aiko@example.com")
    assert aiko.timezone == "America/Denver"  # no zone, no phone: the clinic default
    assert aiko.email_consent is None and ledger(nurture_app, aiko.id) == []

    luis = contact(nurture_app, phone="+18185550104")
    assert luis.email is None and luis.sms_consent == "opted_in"
    assert luis.timezone == "America/Los_Angeles"


def test_reimporting_the_same_file_changes_nothing(
    write_csv: Callable[..., Path], run_import: Callable[..., Any], snapshot: Callable[[], Any]
) -> None:
    rows = [*PEOPLE, PEOPLE[0] | {"first_name": "Mary", "tags": "vip"}]  # a duplicate row too
    path = write_csv(rows)
    first = run_import(path)
    assert (first.inserted, first.updated) == (4, 1)
    before = snapshot()
    again = run_import(path)
    assert (again.inserted, again.updated, again.unchanged, again.rejected) == (0, 0, 5, 0)
    assert snapshot() == before


def test_first_value_wins_and_rows_only_add(
    nurture_app: NurtureApp, write_csv: Callable[..., Path], run_import: Callable[..., Any]
) -> None:
    run_import(write_csv([PEOPLE[2]]))
    later = {"first_name": "Aiko-Changed", "last_name": "Tanaka", "email": "AIKO@example.com",
             "phone": "+1 323 555 0109", "tags": "booking", "email_consent": "no"}  # fmt: skip
    summary = run_import(write_csv([later], name="later.csv"), source="booking-system")
    assert (summary.inserted, summary.updated) == (0, 1)
    aiko = contact(nurture_app, email="aiko@example.com")
    assert (aiko.first_name, aiko.last_name) == ("Aiko", "Tanaka")  # blank filled, name kept
    assert aiko.phone == "+13235550109" and aiko.tags == ["booking", "event"]
    assert aiko.source == "website-form"


def test_rows_naming_two_different_contacts_are_rejected_not_merged(
    nurture_app: NurtureApp, write_csv: Callable[..., Path], run_import: Callable[..., Any]
) -> None:
    run_import(write_csv(PEOPLE))
    mixed = {"email": "aiko@example.com", "phone": "(310) 555-0101"}  # Aiko's email, Maria's phone
    other = {"email": "maria.lopez@example.com", "phone": "(310) 555-0199"}  # Maria, a new phone
    summary = run_import(write_csv([mixed, other], name="mixed.csv"))
    assert summary.rejected == 2 and summary.inserted == 0
    lines = list(csv.reader(summary.rejects_path.open()))
    assert [row[0] for row in lines[1:]] == ["2", "3"]
    assert "two different contacts" in lines[1][1] and "phone differs" in lines[2][1]
    assert contact(nurture_app, email="aiko@example.com").phone is None


def test_rejects_file_has_line_numbers_reasons_and_the_row(
    nurture_app: NurtureApp, write_csv: Callable[..., Path], run_import: Callable[..., Any]
) -> None:
    text = (
        "first_name,email,phone,timezone,email_consent,consent_at\n"
        "Good,good@example.com,,,yes,2026-03-01\n"
        "Bad,not-an-email,,,,\n"
        'Multi,"multi\nline@example.com",,,,\n'
        "NoAddress,,,,,\n"
        "Zone,zone@example.com,,Pacific Time,,\n"
        "Word,word@example.com,,,maybe,\n"
        "Future,future@example.com,,,yes,2027-06-01\n"
        "Phone,,555-0102,,,\n"
        "Short,short@example.com\n"
        "Good2,good2@example.com,(213) 555-0199,,,03/15/2026\n"
    )
    summary = run_import(write_csv(text))
    assert (summary.inserted, summary.rejected) == (2, 8)
    assert summary.rejects_path == summary.rejects_path.with_name("contacts.rejects.csv")
    rows = list(csv.DictReader(summary.rejects_path.open()))
    reasons = {row["line"]: row["reason"] for row in rows}
    assert set(reasons) == {"3", "4", "6", "7", "8", "9", "10", "11"}
    assert "invalid email" in reasons["3"] and "invalid email" in reasons["4"]
    assert "neither an email nor a phone" in reasons["6"]
    assert "unknown time zone 'Pacific Time'" in reasons["7"]
    assert "'maybe' is not one of yes / no / opted_out" in reasons["8"]
    assert "in the future" in reasons["9"] and "invalid phone" in reasons["10"]
    assert "has 2 fields, the header has 6" in reasons["11"]
    assert rows[0]["first_name"] == "Bad" and rows[0]["email"] == "not-an-email"
    good = contact(nurture_app, email="good@example.com")
    ((_, status, _),) = ledger(nurture_app, good.id)
    assert status == "opted_in"


def test_import_lifts_no_suppression_and_opts_no_suppressed_address_in(
    nurture_app: NurtureApp,
    write_csv: Callable[..., Path],
    run_import: Callable[..., Any],
    snapshot: Callable[[], Any],
) -> None:
    run_import(write_csv(PEOPLE))
    maria = contact(nurture_app, email="maria.lopez@example.com")
    with transaction(nurture_app.sessions) as session:
        # Maria texted STOP; James's email bounced; a stranger unsubscribed before being a contact.
        opt_out(
            session,
            session.get(Contact, maria.id),
            "sms",
            reason="stop",
            source="twilio",
            at=nurture_app.clock(),
        )
        suppress(
            session,
            "email",
            "james@example.com",
            "bounced",
            source="sendgrid",
            at=nurture_app.clock(),
        )
        suppress(
            session,
            "email",
            "new@example.com",
            "unsubscribed",
            source="preferences",
            at=nurture_app.clock(),
        )
        suppress(session, "sms", "+18185550104", "manual", source="staff", at=nurture_app.clock())
    before = snapshot()["suppressions"]

    again = [
        PEOPLE[0],  # still says sms yes, with evidence
        PEOPLE[1] | {"email_suppression": "", "email_consent": "yes"},
        {"first_name": "New", "email": "new@example.com", "email_consent": "yes"},
        PEOPLE[3],
    ]
    header = [*PEOPLE[0].keys(), "email_suppression"]
    summary = run_import(write_csv(again, name="again.csv", header=header))
    assert summary.suppressions_kept == 4
    assert snapshot()["suppressions"] == before  # nothing lifted, nothing re-dated
    with transaction(nurture_app.sessions, immediate=False) as session:
        active = session.scalars(select(Suppression).where(Suppression.lifted_at.is_(None))).all()
        assert len(active) == 4
    assert contact(nurture_app, email="maria.lopez@example.com").sms_consent == "opted_out"
    new = contact(nurture_app, email="new@example.com")
    assert new.email_consent is None  # suppressed before they were a contact: no opt-in


def test_a_row_may_add_an_opt_out_and_a_suppression(
    nurture_app: NurtureApp, write_csv: Callable[..., Path], run_import: Callable[..., Any]
) -> None:
    run_import(write_csv(PEOPLE))
    rows = [
        {"email": "maria.lopez@example.com", "email_consent": "unsubscribed"},
        {"email": "aiko@example.com", "email_suppression": "bounced"},
    ]
    summary = run_import(
        write_csv(rows, name="out.csv", header=["email", "email_consent", "email_suppression"])
    )
    assert summary.updated == 2
    with transaction(nurture_app.sessions, immediate=False) as session:
        maria = active_suppression(session, "email", "maria.lopez@example.com")
        aiko = active_suppression(session, "email", "aiko@example.com")
        assert maria is not None and maria.reason == "unsubscribed"
        assert aiko is not None and aiko.reason == "bounced"
    assert contact(nurture_app, email="maria.lopez@example.com").email_consent == "opted_out"


def test_other_column_names_mapping_and_custom_fields(
    nurture_app: NurtureApp, write_csv: Callable[..., Path], run_import: Callable[..., Any]
) -> None:
    text = (
        "Given Name,Surname,E-mail Address,Cell,Zone Name,Insurance Provider,Internal Notes\n"
        "Omar,Haddad,omar@example.com,424-555-0111,America/Chicago,Aetna,call after 5\n"
    )
    mapping = ColumnMapping.from_options(
        ["timezone=Zone Name", "custom.plan=Insurance Provider"],
        ColumnMapping(ignore=("Internal Notes",)),
    )
    summary = run_import(write_csv(text), mapping=mapping)
    assert summary.inserted == 1 and summary.custom_fields == ["plan"]
    assert ("Internal Notes", "ignored") in summary.columns
    omar = contact(nurture_app, email="omar@example.com")
    assert (omar.first_name, omar.last_name, omar.phone) == ("Omar", "Haddad", "+14245550111")
    assert omar.timezone == "America/Chicago" and omar.custom_fields == {"plan": "Aetna"}


def test_worker_processes_give_the_same_result_as_one_process(
    nurture_app: NurtureApp,
    write_csv: Callable[..., Path],
    run_import: Callable[..., Any],
    snapshot: Callable[[], Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(importer, "CHUNK_ROWS", 7)  # many chunks in flight at once
    rows = [
        {"first_name": f"P{n}", "email": f"p{n % 40}@example.com",
         "phone": f"(213) 555-{n % 40:04d}", "tags": f"t{n % 3}", "email_consent": "yes"}
        for n in range(100)
    ] + [{"email": "broken"}]  # fmt: skip
    path = write_csv(rows)
    parallel = run_import(path, workers=2)
    assert (parallel.inserted, parallel.rejected) == (40, 1)
    assert contact(nurture_app, email="p1@example.com").first_name == "P1"  # file order kept
    assert contact(nurture_app, email="p1@example.com").tags == ["t0", "t1", "t2"]
    before = snapshot()
    serial = run_import(path, workers=0)
    assert (serial.unchanged, serial.rejected) == (100, 1)
    assert snapshot() == before


def test_the_fast_path_for_new_people_stores_what_the_merge_would(
    nurture_app: NurtureApp,
    write_csv: Callable[..., Path],
    run_import: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On PostgreSQL the fast path COPYs rows with ids drawn from the sequence; on SQLite it
    INSERTs tuples built by hand: either way, what the general path stores."""
    from sqlalchemy import delete

    from contacts import fresh, writer

    people = [row | {"insurance": "Aetna"} if i % 2 else row for i, row in enumerate(PEOPLE)]
    path = write_csv(people, header=[*PEOPLE[0].keys(), "insurance"])

    def stored() -> list[Any]:
        run_import(path, "web", default_timezone="America/Denver")
        with transaction(nurture_app.sessions) as session:
            contacts = [
                (c.email, c.phone, c.first_name, c.last_name, c.timezone, c.custom_fields,
                 c.email_consent, c.sms_consent, c.source, c.tags, c.created_at, c.updated_at)
                for c in session.scalars(select(Contact).order_by(Contact.email))
            ]  # fmt: skip
            events = session.execute(
                select(Contact.email, ConsentEvent.channel, ConsentEvent.status,
                       ConsentEvent.occurred_at, ConsentEvent.source, ConsentEvent.evidence,
                       ConsentEvent.recorded_at)
                .join(Contact).order_by(Contact.email, ConsentEvent.channel)
            ).all()  # fmt: skip
            session.execute(delete(Contact))  # its tags and consent events go with it
        return [contacts, [tuple(e) for e in events]]

    taken: list[int] = []

    def spy(*args: Any) -> Any:
        fast_rows, rest = fresh.split_fresh(*args)
        taken.append(len(fast_rows))
        return fast_rows, rest

    monkeypatch.setattr(writer, "split_fresh", spy)
    fast = stored()
    assert taken == [4]  # every row took the fast path
    monkeypatch.setattr(writer, "split_fresh", lambda rows, known, suppressed: ([], rows))
    slow = stored()
    assert fast == slow and len(fast[0]) == 4 and len(fast[1]) == 4
    assert sorted(str(c[5]) for c in fast[0]) == ["{'insurance': 'Aetna'}"] * 2 + ["{}"] * 2


def test_two_imports_at_once_add_each_person_once(
    nurture_app: NurtureApp,
    write_csv: Callable[..., Path],
    run_import: Callable[..., Any],
    count_contacts: Callable[[], int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(importer, "CHUNK_ROWS", 25)  # many small batches that interleave

    def people(start: int, stop: int) -> Rows:
        return [{"email": f"p{n}@example.com", "tags": f"from{start}"} for n in range(start, stop)]

    first = write_csv(people(0, 300), name="first.csv")
    second = write_csv([row | {"tags": "again"} for row in people(0, 300)], name="second.csv")
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda path: run_import(path, workers=0), [first, second]))
    assert sum(r.inserted for r in results) == 300 and sum(r.rejected for r in results) == 0
    assert sum(r.updated for r in results) == 300
    assert count_contacts() == 300
    assert contact(nurture_app, email="p150@example.com").tags == ["again", "from0"]


def test_an_import_gives_its_sqlite_connection_back_with_default_settings(
    sqlite_app: NurtureApp, write_csv: Callable[..., Path]
) -> None:
    from contacts.importer import import_csv

    import_csv(sqlite_app.sessions, write_csv(PEOPLE), "web", default_timezone="UTC",
               clock=sqlite_app.clock)  # fmt: skip
    with transaction(sqlite_app.sessions, immediate=False) as session:
        connection = session.connection()
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
        assert connection.exec_driver_sql("PRAGMA cache_size").scalar() == -2000
        frames = connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        assert frames[1] == frames[2]  # everything in the WAL is in the database


def test_a_suppression_made_earlier_in_the_same_import_is_kept_by_later_batches(
    nurture_app: NurtureApp,
    write_csv: Callable[..., Path],
    run_import: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The suppression list is empty when the import starts, so workers skip the address
    hashes; the writer must still find the suppression an earlier batch added."""
    monkeypatch.setattr(importer, "CHUNK_ROWS", 1)
    monkeypatch.setattr(importer, "WRITE_ROWS", 1)  # one row a batch
    rows = [
        {"email": "x@example.com", "email_suppression": "bounced"},
        {"email": "other@example.com", "email_consent": "yes"},
        {"email": "X@Example.com", "email_consent": "yes", "first_name": "Xavier"},
    ]
    header = ["first_name", "email", "email_consent", "email_suppression"]
    summary = run_import(write_csv(rows, header=header), workers=0)
    assert summary.suppressions_kept == 1
    assert contact(nurture_app, email="x@example.com").email_consent is None
    with transaction(nurture_app.sessions, immediate=False) as session:
        active = session.scalars(select(Suppression).where(Suppression.lifted_at.is_(None))).all()
        assert [(s.channel, s.reason) for s in active] == [("email", "bounced")]


def test_a_failing_checkpoint_after_the_import_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """finish() runs after a failed import too: its own error must never replace the import's."""
    from sqlalchemy.exc import OperationalError

    from contacts.writer import BatchWriter

    class BrokenSession:
        def get_bind(self) -> Any:
            return type("Bind", (), {"dialect": type("D", (), {"name": "sqlite"})()})()

        def connection(self) -> Any:
            raise OperationalError("PRAGMA wal_checkpoint", {}, Exception("disk I/O error"))

        def close(self) -> None:
            self.closed = True

    writer = BatchWriter(BrokenSession, "test", "x.csv", "America/Los_Angeles", datetime.now(UTC))  # type: ignore[arg-type]
    with caplog.at_level("WARNING", logger="nurture.contacts.import"):
        writer.finish()
    assert "could not checkpoint after the import" in caplog.text
    assert "disk I/O error" in caplog.text
