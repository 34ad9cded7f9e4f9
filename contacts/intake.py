"""One contact from a client of the API: created or updated by its email or phone, with consent.

The same rules as a CSV row, through the same functions: addresses through contacts.normalize;
consent through contacts.consent.record_consent (an SMS opt-in without written evidence is
refused there: TCPA) and opt-outs through contacts.optout.opt_out, so the API writes the same
ledger and suppressions as every other path. Like an import (contacts.merge) it fills blanks
and never takes away: a different address for a known person, or an opt-in over an opt-out,
is a conflict, because only the person can undo an opt-out (contacts.optout.opt_in_again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from contacts.consent import record_consent
from contacts.normalize import normalize_email, normalize_timezone, phone_and_zone
from contacts.optout import opt_out
from contacts.suppressions import is_suppressed
from core.errors import InputError, NurtureError
from core.languages import LANGUAGE_WORDS
from storage.models import Channel, ConsentStatus, Contact

MAX_NAME, MAX_TAG = 100, 64
#: As in a CSV row (contacts.rows): a consent time past this is a mistake, not a plan.
FUTURE_SLACK = timedelta(days=1)


class IntakeConflict(NurtureError):
    """The request contradicts what we hold (two people, or an opt-out only the person may lift)."""


@dataclass(frozen=True)
class ConsentStatement:
    status: ConsentStatus
    evidence: str
    at: datetime


@dataclass(frozen=True)
class Intake:
    """What a client says about one person; `source` names the client in the ledger."""

    source: str
    email: str | None = None
    phone: str | None = None
    first_name: str = ""
    last_name: str = ""
    timezone: str | None = None
    language: str | None = None
    tags: tuple[str, ...] = ()
    consent: dict[Channel, ConsentStatement] = field(default_factory=dict)


def take_in(
    session: Session, intake: Intake, *, default_timezone: str, now: datetime
) -> tuple[Contact, bool]:
    """The contact, created or updated, and whether it was created. Raises InputError for bad
    input and IntakeConflict; the caller's transaction is then rolled back, nothing kept."""
    email = normalize_email(intake.email) if intake.email else None
    phone, phone_zone = phone_and_zone(intake.phone) if intake.phone else (None, None)
    if email is None and phone is None:
        raise InputError("give an email address or a phone number")
    for what, text in (("first_name", intake.first_name), ("last_name", intake.last_name)):
        if len(text) > MAX_NAME:
            raise InputError(f"{what} is longer than {MAX_NAME} characters")
    if any(len(tag) > MAX_TAG for tag in intake.tags):
        raise InputError(f"a tag is longer than {MAX_TAG} characters")
    if any(said.at > now + FUTURE_SLACK for said in intake.consent.values()):
        raise InputError("a consent time is in the future")
    zone = normalize_timezone(intake.timezone) if intake.timezone else None
    language = _language(intake.language)
    contact = _find(session, email, phone)
    created = contact is None
    if contact is None:
        contact = Contact(timezone=zone or phone_zone or default_timezone, source=intake.source)
        session.add(contact)
    for attribute, value in (("email", email), ("phone", phone)):
        held = getattr(contact, attribute)
        if value is not None and held is not None and held != value:
            raise IntakeConflict(f"the contact already has a different {attribute}")
        if value is not None:
            setattr(contact, attribute, value)
    contact.first_name = contact.first_name or intake.first_name.strip()
    contact.last_name = contact.last_name or intake.last_name.strip()
    if language:
        contact.language = language
    session.flush()
    contact.add_tags([tag.strip() for tag in intake.tags])
    for channel, statement in intake.consent.items():
        _consent(session, contact, channel, statement, intake.source)
    session.flush()
    return contact, created


def _find(session: Session, email: str | None, phone: str | None) -> Contact | None:
    found = {
        contact.id: contact
        for column, value in ((Contact.email, email), (Contact.phone, phone))
        if value is not None
        for contact in session.scalars(select(Contact).where(column == value))
    }
    if len(found) > 1:
        raise IntakeConflict("the email and the phone belong to two different contacts")
    contact = next(iter(found.values()), None)
    if contact is not None and contact.erased_at is not None:
        raise IntakeConflict("that contact was erased on request and is not taken in again")
    return contact


def _consent(
    session: Session, contact: Contact, channel: Channel, said: ConsentStatement, source: str
) -> None:
    address = contact.address(channel)
    if address is None:
        raise InputError(f"{channel} consent needs the contact's {_ADDRESS[channel]}")
    if said.status == ConsentStatus.OPTED_OUT:
        opt_out(session, contact, channel, source=source, at=said.at)
        return
    if contact.consent_for(channel) == ConsentStatus.OPTED_IN:
        return  # already in: a repeated sign-up changes nothing
    if contact.consent_for(channel) == ConsentStatus.OPTED_OUT or is_suppressed(
        session, channel, address
    ):
        raise IntakeConflict(
            f"{channel} is opted out or suppressed: only the person can opt back in"
        )
    record_consent(
        session,
        contact.id,
        channel,
        ConsentStatus.OPTED_IN,
        source=source,
        evidence=said.evidence,
        occurred_at=said.at,
    )


_ADDRESS = {Channel.EMAIL: "email address", Channel.SMS: "phone number"}


def _language(text: str | None) -> str:
    if not text:
        return ""
    code = LANGUAGE_WORDS.get(text.strip().lower())
    if code is None:
        raise InputError(f"language {text[:20]!r} is not one we write in")
    return code
