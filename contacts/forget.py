"""Erase a person's data on request (CCPA right to delete), keeping them unsubscribed.

Every address of the contact is suppressed first (reason "forgotten" unless already suppressed
for another reason), then the address itself is blanked on the suppression row: only its keyed
hash stays (core.suppression_hash), which is enough to refuse a later import or send to that
address and useless for anything else. The contact row stays, anonymised (erased_at set), so
campaign counts and message history still add up: messages keep their state and times, events
their kind, time and campaign step. Everything else that can name the person goes:

- names, addresses, custom fields, tags and the consent ledger (its evidence can quote them);
- the time of any booked visit, from every entry, from its reminders' lateness limit, and from
  the due time of any message not yet sent (a reminder's is a day before the visit);
- events' payloads (an inbound text's body, a bounce's description naming the address, a click's
  user agent), and those of unlinked events (an inbound text from before the contact existed)
  that quote their email, phone or name;
- message errors (a provider's bounce text names the address);
- an import job's error or file name that quotes them;
- files outside the database, through the `PersonalFiles` the caller hands in (import uploads
  and rejects files, the offline outbox): they are rewritten in the same call, so a failure
  there rolls the whole request back and it can simply be run again.

On SQLite, freed space is zeroed as the rows change (PRAGMA secure_delete), so the erased text
does not linger in the database file's free pages.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import phonenumbers
from sqlalchemy import String, cast, delete, or_, select, update
from sqlalchemy.orm import Session

from contacts.suppressions import hasher_of, suppress
from core.errors import InputError
from storage.models import (
    IN_SEQUENCE,
    ConsentEvent,
    Contact,
    ContactTag,
    Enrollment,
    EnrollmentState,
    Event,
    ImportJob,
    Message,
    MessageState,
    Suppression,
    SuppressionReason,
)

log = logging.getLogger("nurture.contacts.forget")

#: What stands in for erased text where a column must still say something happened.
ERASED = "[erased]"


@dataclass(frozen=True)
class Person:
    """Who is being forgotten, as the places outside the database need to find them."""

    contact_id: int
    email: str | None
    phone: str | None  # E.164, as stored
    full_name: str
    #: Every message ever planned for them (outbox files are named by message id).
    message_ids: frozenset[int]

    @property
    def words(self) -> tuple[str, ...]:
        """Their email, phone and full name as stored, the ones they have."""
        return tuple(w for w in (self.email, self.phone, self.full_name) if w)

    def mentioned_in(self, text: str) -> bool:
        """True when `text` quotes their email or full name (in any case or spacing), or their
        phone number however it is written ("+1 310-555-0101", "(310) 555 0101")."""
        flat = " ".join(text.split()).lower()
        if self.email and self.email.lower() in flat:
            return True
        if self.full_name and " ".join(self.full_name.split()).lower() in flat:
            return True
        national = _national_digits(self.phone)
        return bool(national) and any(
            national in re.sub(r"\D", "", run) for run in _NUMBER_RUN.findall(text)
        )


#: A phone number as people write it: digits with spaces, dots, dashes, brackets or a plus.
_NUMBER_RUN = re.compile(r"\+?\d[\d\s().-]{5,}\d")


def _national_digits(phone: str | None) -> str:
    if not phone:
        return ""
    try:
        return str(phonenumbers.parse(phone).national_number)
    except phonenumbers.NumberParseException:
        return re.sub(r"\D", "", phone)


class PersonalFiles(Protocol):
    """A place outside the database where the system writes personal data."""

    def forget(self, person: Person) -> int:
        """Erase every trace of `person` here; returns how many files were changed or removed."""
        ...


@dataclass
class Forgotten:
    contact_id: int
    suppressed: list[str]  # channels now suppressed by hash
    messages_skipped: int
    files_changed: int = 0


def forget_contact(
    session: Session,
    contact: Contact,
    *,
    requested_by: str,
    now: datetime,
    files: Sequence[PersonalFiles],
) -> Forgotten:
    """Erase the contact's personal data in the caller's transaction, and in `files`."""
    if contact.erased_at is not None:
        raise InputError(
            f"contact {contact.id} was already forgotten on {contact.erased_at:%Y-%m-%d}"
        )
    if session.get_bind().dialect.name == "sqlite":
        # Zero what the statements below free, instead of leaving it in the file's free space.
        session.connection().exec_driver_sql("PRAGMA secure_delete = ON")
    person = _person(session, contact)
    requested_by = _without(requested_by, person.words)  # "Maria Lopez, by phone" names her
    channels = _keep_only_hashes(session, contact, now=now, requested_by=requested_by)
    skipped = session.connection().execute(  # a Connection's result is a CursorResult (rowcount)
        update(Message)
        .where(Message.contact_id == contact.id,
               Message.state.in_([MessageState.PLANNED, MessageState.CLAIMED]))
        # A message never sent has no time worth keeping, and a reminder's was set from the
        # visit (a day before it): it takes the time it was skipped.
        .values(state=MessageState.SKIPPED, skip_reason="contact forgotten", due_at=now,
                updated_at=now)
    ).rowcount  # fmt: skip
    session.execute(
        update(Enrollment)
        .where(
            Enrollment.contact_id == contact.id,
            Enrollment.state.in_([str(state) for state in IN_SEQUENCE]),
        )
        .values(state=EnrollmentState.EXITED, exited_at=now, exit_reason="forgotten")
    )
    _forget_visits(session, contact.id)
    session.execute(delete(ConsentEvent).where(ConsentEvent.contact_id == contact.id))
    session.execute(delete(ContactTag).where(ContactTag.contact_id == contact.id))
    _blank_events(session, person)
    session.execute(
        update(Message)
        .where(Message.contact_id == contact.id, Message.error.is_not(None))
        .values(error=f"{ERASED} (contact forgotten)")
    )
    _scrub_import_jobs(session, person)
    log.info("forgot contact %d (%s)", contact.id, ", ".join(channels) or "no addresses")
    contact.first_name = contact.last_name = ""
    contact.email = contact.phone = None
    contact.custom_fields = {}
    contact.email_consent = contact.sms_consent = None
    contact.erased_at = now
    session.expire(contact, ["tag_rows", "consent_events"])
    session.add(
        Event(kind="forgotten", occurred_at=now, contact_id=contact.id,
              data={"requested_by": requested_by, "channels": channels})
    )  # fmt: skip
    session.flush()
    changed = sum(place.forget(person) for place in files)
    return Forgotten(contact.id, channels, skipped or 0, changed)


def _forget_visits(session: Session, contact_id: int) -> None:
    """A visit's time at a spine clinic is health-adjacent: it goes from every entry (running
    or ended), and from its messages' `not_after`, which a reminder timed before the visit has
    capped at the visit (scheduler.appointments). Booking events' payloads, where it is also
    written, go with every other event's (_blank_events)."""
    session.execute(
        update(Enrollment)
        .where(Enrollment.contact_id == contact_id, Enrollment.appointment_at.is_not(None))
        .values(appointment_at=None)
    )
    session.execute(
        update(Message)
        .where(Message.contact_id == contact_id, Message.not_after.is_not(None))
        .values(not_after=None)
    )


def _person(session: Session, contact: Contact) -> Person:
    message_ids = session.scalars(select(Message.id).where(Message.contact_id == contact.id))
    full_name = " ".join(f"{contact.first_name} {contact.last_name}".split())
    return Person(contact.id, contact.email, contact.phone, full_name, frozenset(message_ids))


def _keep_only_hashes(
    session: Session, contact: Contact, *, now: datetime, requested_by: str
) -> list[str]:
    """Suppress every address, then blank the address on its suppression row."""
    channels = []
    hasher = hasher_of(session)
    for channel in ("email", "sms"):
        address = contact.address(channel)
        if not address:
            continue
        suppress(session, channel, address, SuppressionReason.FORGOTTEN,
                 source=f"forget:{requested_by}", at=now)  # fmt: skip
        session.execute(
            update(Suppression)
            .where(Suppression.channel == channel,
                   Suppression.address_hash == hasher(channel, address))
            .values(address=None)
        )  # fmt: skip
        channels.append(channel)
    return channels


def _blank_events(session: Session, person: Person) -> None:
    """Keep each event's kind, time and campaign step (reports count them); drop its payload.

    Their own events, and events about their messages; then unlinked events (an inbound text
    from a number no contact had yet) whose payload quotes them. The payload is JSON text, in
    which json.dumps escapes non-ASCII letters, so each word is searched for in that form."""
    linked = Event.contact_id == person.contact_id
    if person.message_ids:
        linked = or_(linked, Event.message_id.in_(sorted(person.message_ids)))
    session.execute(update(Event).where(linked).values(data={}, user_agent=None))
    if not person.words:
        return
    payload = cast(Event.data, String)
    quoting = or_(
        *(payload.icontains(json.dumps(word)[1:-1], autoescape=True) for word in person.words)
    )
    session.execute(
        update(Event)
        .where(Event.contact_id.is_(None), quoting)
        .values(data={}, user_agent=None)
        .execution_options(synchronize_session=False)
    )


def _scrub_import_jobs(session: Session, person: Person) -> None:
    """An import's one-line error (or, rarely, its file name) can quote a row."""
    if not person.words:
        return
    quoting = or_(
        *(
            column.icontains(word, autoescape=True)
            for word in person.words
            for column in (ImportJob.error, ImportJob.filename)
        )
    )
    for job in session.scalars(select(ImportJob).where(quoting)):
        job.error = _without(job.error, person.words) if job.error else job.error
        job.filename = _without(job.filename, person.words)


def _without(text: str, words: Sequence[str]) -> str:
    for word in words:
        text = re.sub(re.escape(word), ERASED, text, flags=re.IGNORECASE)
    return text
