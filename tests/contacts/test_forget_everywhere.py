"""Forget means forget (CCPA right to delete): after `forget`, no trace of the person's email,
phone or name is left in any text column of any table, nor in any file under var/ (uploads,
rejects files, the outbox, the database files themselves), while another contact is untouched."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import JSON, String, Text, func, select

from contacts.forget import Person, forget_contact
from contacts.import_files import ImportFiles
from contacts.jobs import run_import_job, start_import_job
from contacts.search import find_contact
from contacts.suppressions import is_suppressed
from core.clock import FrozenClock
from nurture.app import NurtureApp
from providers.base import OutgoingEmail, OutgoingSms
from providers.events import DeliveryEvent, EventType, RejectReason
from providers.memory import MemoryChannel
from providers.outbox import OutboxChannel, OutboxFiles
from scheduler.deliveries import apply_event
from storage.db import transaction
from storage.models import (
    Base,
    Campaign,
    Contact,
    Enrollment,
    Event,
    ImportJob,
    Message,
    MessageState,
)
from tests.conftest import build_app
from tests.contacts.conftest import csv_text

MARIA_EMAIL, MARIA_PHONE = "maria.lopez@example.com", "+13105550101"
#: Every way her data could be written down; none may survive.
MARIA_TRACES = ("maria.lopez@example.com", "+13105550101", "3105550101", "310) 555-0101",
                "555-0101", "maria lopez", "lopez", "aetna gold ppo")  # fmt: skip
JAMES_TRACES = ("james.carter@example.com", "+12135550199", "james carter", "blue shield")
INBOUND = "Hi this is Maria Lopez, my back is awful, please stop texting me"
HEADER = ["first_name", "last_name", "email", "phone", "timezone", "tags", "email_consent",
          "sms_consent", "sms_consent_evidence", "insurance"]  # fmt: skip
ROWS = [
    {"first_name": "Maria", "last_name": "Lopez", "email": MARIA_EMAIL,
     "phone": "(310) 555-0101", "tags": "maria-lopez-referral", "email_consent": "yes",
     "sms_consent": "yes", "insurance": "Aetna Gold PPO",
     "sms_consent_evidence": "Maria Lopez signed the intake form at (310) 555-0101"},
    {"first_name": "James", "last_name": "Carter", "email": "james.carter@example.com",
     "phone": "(213) 555-0199", "email_consent": "yes", "sms_consent": "yes",
     "sms_consent_evidence": "James Carter signed the intake form", "insurance": "Blue Shield"},
    # Rejected rows (a time zone that does not exist), one of each person's.
    {"first_name": "Maria", "last_name": "Lopez", "email": MARIA_EMAIL, "timezone": "Mars/Base"},
    {"first_name": "James", "last_name": "Carter", "email": "james.carter@example.com",
     "timezone": "Mars/Base"},
]  # fmt: skip


@pytest.fixture
def var(tmp_path: Path) -> Path:
    return tmp_path / "var"


@pytest.fixture
def app(var: Path, frozen_clock: FrozenClock, channel: MemoryChannel) -> Iterator[NurtureApp]:
    """The embedded default's layout: database, outbox and imports all under var/."""
    var.mkdir()
    app = build_app(f"sqlite:///{var / 'nurture.db'}", var, frozen_clock, channel)
    yield app
    app.dispose()


def _import(app: NurtureApp, var: Path) -> Path:
    """An upload as the dashboard saves it, imported as a job (which leaves a rejects file)."""
    upload = var / "imports" / "3f2a" / "clinic-list.csv"
    upload.parent.mkdir(parents=True)
    upload.write_text(csv_text(ROWS, HEADER), encoding="utf-8")
    job_id = start_import_job(app.sessions, upload, "front-desk", clock=app.clock)
    summary = run_import_job(app.sessions, job_id, upload, "front-desk",
                             default_timezone="America/Los_Angeles", clock=app.clock)  # fmt: skip
    assert summary is not None and (summary.inserted, summary.rejected) == (2, 2)
    assert summary.rejects_path is not None
    return summary.rejects_path


def _message(app: NurtureApp, contact_id: int, campaign: Campaign, channel: str, step: int) -> int:
    with transaction(app.sessions) as session:
        enrollment = session.scalar(
            select(Enrollment).where(Enrollment.contact_id == contact_id)
        ) or Enrollment(campaign_id=campaign.id, contact_id=contact_id, enrolled_at=app.clock())
        session.add(enrollment)
        session.flush()
        message = Message(
            enrollment_id=enrollment.id, campaign_id=campaign.id, contact_id=contact_id,
            step_index=step, channel=channel, state=MessageState.SENT, due_at=app.clock(),
            sent_at=app.clock(), provider="sendgrid", provider_message_id=f"pm-{contact_id}-{step}",
        )  # fmt: skip
        session.add(message)
        session.flush()
        return message.id


def _plant_everything(app: NurtureApp, var: Path) -> dict[str, Any]:
    """Her data everywhere the system writes it, and James's beside it."""
    rejects = _import(app, var)
    # An upload still on disk (an import under way, or a process that died mid-import).
    leftover = var / "imports" / "77b0" / "second-list.csv"
    leftover.parent.mkdir(parents=True)
    leftover.write_text(csv_text(ROWS[:1], HEADER), encoding="utf-8")
    jamess_upload = var / "imports" / "88c1" / "other-list.csv"
    jamess_upload.parent.mkdir(parents=True)
    jamess_upload.write_text(csv_text(ROWS[1:2], HEADER), encoding="utf-8")
    now = app.clock()
    with transaction(app.sessions) as session:
        maria = find_contact(session, MARIA_EMAIL)
        james = find_contact(session, "james.carter@example.com")
        campaign = Campaign(name="back-pain", definition={}, state="active", created_at=now)
        session.add(campaign)
        session.flush()
        ids = {"maria": maria.id, "james": james.id}
        session.add_all([
            Event(kind="inbound", occurred_at=now, contact_id=maria.id, channel="sms",
                  provider="twilio", provider_event_id="twilio:SM1:received",
                  data={"intent": "other", "body": INBOUND, "from": "+1******0101"}),
            # Before she was a contact: linked to nobody, but quoting her.
            Event(kind="inbound", occurred_at=now - timedelta(days=30), channel="sms",
                  provider="twilio", provider_event_id="twilio:SM0:received",
                  data={"intent": "other", "body": "Maria Lopez here, call me at 310-555-0101",
                        "from": "+1******0101"}),
            Event(kind="inbound", occurred_at=now, contact_id=james.id, channel="sms",
                  provider="twilio", provider_event_id="twilio:SM2:received",
                  data={"intent": "other", "body": "James Carter here, see you Tuesday"}),
            Event(kind="clicked", occurred_at=now, contact_id=maria.id,
                  user_agent="Mozilla/5.0 (Maria Lopez's iPhone)", data={"link": "book"}),
        ])  # fmt: skip
        session.get_one(ImportJob, 1).error = f"row of {MARIA_EMAIL} looked odd"
    campaign_id = 1
    with transaction(app.sessions) as session:
        campaign = session.get_one(Campaign, campaign_id)
    ids["maria_email"] = _message(app, ids["maria"], campaign, "email", 0)
    ids["maria_sms"] = _message(app, ids["maria"], campaign, "sms", 1)
    ids["james_email"] = _message(app, ids["james"], campaign, "email", 0)
    bounce = DeliveryEvent(
        provider="sendgrid", event_type=EventType.BOUNCED, event_id="sg-bounce-1",
        occurred_at=now, message_id=ids["maria_email"], provider_message_id="pm-1-0",
        recipient=MARIA_EMAIL, reject_reason=RejectReason.HARD_BOUNCE, provider_status="bounce",
        description=f"550 5.1.1 <{MARIA_EMAIL}>: Recipient address rejected (Maria Lopez)",
    )  # fmt: skip
    with transaction(app.sessions) as session:
        assert apply_event(session, bounce, app.settings.status)
    outbox = OutboxChannel(Path(app.settings.outbox.dir))

    async def send_all() -> None:
        people = (("maria_email", MARIA_EMAIL, "Maria Lopez"),
                  ("james_email", "james.carter@example.com", "James Carter"))  # fmt: skip
        for key, to, name in people:
            first = name.split()[0]
            await outbox.send(OutgoingEmail(ids[key], to, "care@clinic.test", "Clinic",
                                            f"{first}, your back", f"<p>Hi {first}</p>",
                                            f"Hi {name}"))  # fmt: skip
        await outbox.send(OutgoingSms(ids["maria_sms"], MARIA_PHONE, "Hi Maria Lopez, reply STOP"))
        await outbox.send(OutgoingSms(9_999, "+12135550199", "Hi James Carter, reply STOP"))

    asyncio.run(send_all())
    assert MARIA_EMAIL in rejects.read_text() and leftover.exists()
    return ids


def _text_columns() -> Iterator[tuple[str, list[Any]]]:
    for table in Base.metadata.sorted_tables:
        columns = [c for c in table.columns if isinstance(c.type, String | Text | JSON)]
        if columns:
            yield table.name, columns


def _database_text(app: NurtureApp) -> list[tuple[str, str]]:
    """Every text and JSON value of every table, as (table, value)."""
    found = []
    with app.engine.connect() as connection:
        for name, columns in _text_columns():
            for row in connection.execute(select(*columns)):
                for value in row:
                    if value is not None:
                        text = value if isinstance(value, str) else json.dumps(value)
                        found.append((name, text))
    return found


def _file_text(var: Path) -> dict[str, str]:
    """Every file under var/ (the database and its WAL too), decoded leniently."""
    return {
        str(path.relative_to(var)): path.read_bytes().decode("utf-8", "replace")
        for path in sorted(var.rglob("*"))
        if path.is_file()
    }


def _traces(text: str, needles: tuple[str, ...]) -> list[str]:
    flat = text.lower()
    return [needle for needle in needles if needle in flat]


def test_forget_leaves_no_trace_in_the_database_or_under_var(app: NurtureApp, var: Path) -> None:
    ids = _plant_everything(app, var)
    database_before = _database_text(app)
    assert any(_traces(text, MARIA_TRACES) for _, text in database_before)
    with transaction(app.sessions, immediate=False) as session:
        counts_before = {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (Contact, Message, Event, Enrollment)
        }

    with transaction(app.sessions) as session:
        maria = session.get_one(Contact, ids["maria"])
        result = forget_contact(session, maria, requested_by="Maria Lopez, by phone",
                                now=app.clock(), files=app.personal_files)  # fmt: skip
    assert result.files_changed >= 4  # rejects, leftover upload, her .eml, sms.jsonl

    left = [(table, needle) for table, text in _database_text(app)
            for needle in _traces(text, MARIA_TRACES)]  # fmt: skip
    assert left == []
    app.dispose()  # the database files as they rest on disk (WAL checkpointed on close)
    files_left = {name: _traces(text, MARIA_TRACES) for name, text in _file_text(var).items()}
    assert {name: found for name, found in files_left.items() if found} == {}

    # James is untouched: his row, his consent evidence, his events, his files.
    everything = " ".join(text for _, text in _database_text(app)).lower()
    for needle in (*JAMES_TRACES, "james carter signed the intake form", "see you tuesday"):
        assert needle in everything, needle
    files = _file_text(var)
    assert "james.carter@example.com" in files["imports/3f2a/clinic-list.rejects.csv"]
    assert "imports/88c1/other-list.csv" in files  # an upload that does not quote her stays
    assert "imports/77b0/second-list.csv" not in files  # one that does is gone
    assert f"outbox/email/{ids['james_email']:08d}.eml" in files
    assert f"outbox/email/{ids['maria_email']:08d}.eml" not in files
    assert "Hi James Carter" in files["outbox/sms.jsonl"]

    # History still adds up: the same rows, one more event (the forgetting itself).
    with transaction(app.sessions, immediate=False) as session:
        counts_after = {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (Contact, Message, Event, Enrollment)
        }
        assert counts_after == counts_before | {"events": counts_before["events"] + 1}
        kinds = session.scalars(
            select(Event.kind).where(Event.contact_id == ids["maria"]).order_by(Event.id)
        ).all()
        assert {"inbound", "clicked", "bounced", "forgotten"} <= set(kinds)
        failed = session.get_one(Message, ids["maria_email"])
        assert failed.state == MessageState.UNDELIVERED
        assert failed.error == "[erased] (contact forgotten)"
        assert is_suppressed(session, "email", MARIA_EMAIL)
        assert is_suppressed(session, "sms", MARIA_PHONE)


def test_a_rejects_file_keeps_everyone_else_s_rows_in_order(tmp_path: Path) -> None:
    folder = tmp_path / "imports"
    (folder / "a").mkdir(parents=True)
    rejects = folder / "a" / "list.rejects.csv"
    rejects.write_text(
        "line,reason,first_name,last_name,email,phone\n"
        "2,bad zone,Ann,Lee,ann@example.com,\n"
        '3,bad zone,Maria,Lopez,,"(310) 555-0101"\n'
        "4,bad zone,Maria,Lopez,,\n"
        "5,bad zone,Bo,Park,MARIA.LOPEZ@EXAMPLE.COM,\n"
        "6,bad zone,Cy,Diaz,cy@example.com,310.555.0102\n",
        encoding="utf-8",
    )
    person = Person(1, MARIA_EMAIL, MARIA_PHONE, "Maria Lopez", frozenset())
    assert ImportFiles(folder).forget(person) == 1
    assert [line.split(",")[0] for line in rejects.read_text().splitlines()] == ["line", "2", "6"]
    assert ImportFiles(folder).forget(person) == 0  # nothing left to change
    assert ImportFiles(tmp_path / "missing").forget(person) == 0


def test_outbox_texts_sent_meanwhile_are_kept(tmp_path: Path) -> None:
    """The rewrite and the senders share one lock: a text appended after it is not lost."""
    outbox = OutboxChannel(tmp_path)
    asyncio.run(outbox.send(OutgoingSms(1, MARIA_PHONE, "for her")))
    asyncio.run(outbox.send(OutgoingSms(2, "+12135550199", "for him")))
    person = Person(7, MARIA_EMAIL, MARIA_PHONE, "Maria Lopez", frozenset({1}))
    assert OutboxFiles(tmp_path).forget(person) == 1
    asyncio.run(outbox.send(OutgoingSms(3, "+12135550198", "after")))
    lines = [json.loads(line)["message_id"] for line in (tmp_path / "sms.jsonl").open()]
    assert lines == [2, 3]
    assert OutboxFiles(tmp_path / "never-used").forget(person) == 0


def test_a_failing_file_rolls_the_whole_forget_back(app: NurtureApp, var: Path) -> None:
    """A file that cannot be rewritten stops the request before anything is committed, so
    running it again after fixing the folder erases everything."""

    class Broken:
        def forget(self, person: Person) -> int:
            raise PermissionError("var/imports is read-only")

    _import(app, var)
    with pytest.raises(PermissionError), transaction(app.sessions) as session:
        maria = find_contact(session, MARIA_EMAIL)
        forget_contact(session, maria, requested_by="staff", now=app.clock(), files=[Broken()])
    with transaction(app.sessions, immediate=False) as session:
        maria = find_contact(session, MARIA_EMAIL)
        assert maria.erased_at is None and maria.last_name == "Lopez"


def test_an_upload_is_deleted_when_its_import_ends(app: NurtureApp, var: Path) -> None:
    rejects = _import(app, var)
    assert not (var / "imports" / "3f2a" / "clinic-list.csv").exists()
    assert rejects.exists()
    failing = var / "imports" / "9d9d" / "broken.csv"
    failing.parent.mkdir(parents=True)
    failing.write_text("first_name\nAna\n", encoding="utf-8")
    job_id = start_import_job(app.sessions, failing, "events", clock=app.clock)
    assert run_import_job(app.sessions, job_id, failing, "events",
                          default_timezone="UTC", clock=app.clock) is None  # fmt: skip
    assert not failing.exists()


def test_the_person_s_words_match_however_they_are_written() -> None:
    person = Person(1, MARIA_EMAIL, MARIA_PHONE, "Maria  Lopez", frozenset())
    for text in ("call (310) 555-0101", "+1 310.555.0101", "MARIA.LOPEZ@example.com",
                 "maria\nlopez", "13105550101"):  # fmt: skip
        assert person.mentioned_in(text), text
    for text in ("call (310) 555-0102", "Maria L.", "maria@example.com", "3105550"):
        assert not person.mentioned_in(text), text
    assert re.sub(r"\s+", " ", "maria  lopez") == "maria lopez"
