"""Sign-ups that opt in twice: the hosted form (web.join) and text-to-join (web.text_join).

TCPA: marketing texts need the person's prior express written consent (47 CFR 64.1200(a)(2),
(f)(9)): a signed agreement, which E-SIGN lets a web form or a text reply be, that names the
seller and says consent is not a condition of purchase. A form anyone can fill with anyone's
number proves little by itself, so a sign-up is only *pending* until the address's owner
confirms it: the email address by clicking a signed link sent to it, the phone by replying YES
from it. Until then nothing is opted in and no campaign can reach the address.

The pending sign-up is an Event of kind `signup_pending` (no migration) holding its evidence:
the exact disclosure shown, the form's URL, when, the IP address and user agent, or the keyword
texted. The confirmation turns that event into `signup_confirmed` and writes the consent through
the one ledger (contacts.consent.record_consent, or contacts.optout.opt_in_again when the person
had opted out: their own confirmation is the only way back), its evidence naming both halves.
Sign-ups nobody confirmed are purged after `signup.unconfirmed_days` (`purge_unconfirmed`).
Contacts are created and updated through contacts.intake, the one intake rule the API uses.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from contacts.consent import record_consent
from contacts.intake import Intake, IntakeConflict, take_in
from contacts.keywords import keyword
from contacts.normalize import normalize_email
from contacts.optout import opt_in_again
from contacts.suppressions import is_suppressed
from core.errors import InputError
from core.redact import mask_email, mask_phone
from storage.models import Channel, ConsentEvent, ConsentStatus, Contact, Event

PENDING, CONFIRMED = "signup_pending", "signup_confirmed"
#: A note for staff: a texted email address another contact holds was not recorded.
HELD_ELSEWHERE = "signup_email_held_elsewhere"
FORM_SOURCE, TEXT_SOURCE = "sign-up form", "text-to-join"
#: Something shaped like an email address inside a text ("it's ana@example.com, thanks").
_EMAIL_IN_TEXT = re.compile(r"[^\s<>()\[\],;:\"']+@[^\s<>()\[\],;:\"']+\.[A-Za-z]{2,}")


@dataclass(frozen=True)
class FormEvidence:
    """What the person saw and where they were when they sent the form."""

    form_text: str  # the form's email statement, as shown
    sms_disclosure: str  # the TCPA disclosure beside the ticked SMS box, as shown ("" unticked)
    form_url: str
    ip: str
    user_agent: str
    at: datetime


@dataclass(frozen=True)
class FormSignup:
    email: str | None
    phone: str | None
    sms_consent: bool
    evidence: FormEvidence
    first_name: str = ""
    last_name: str = ""
    language: str = ""


@dataclass(frozen=True)
class Pending:
    """The contact and the pending sign-ups to confirm (None: nothing to confirm there)."""

    contact: Contact
    email: Event | None
    sms: Event | None


def sign_up(session: Session, form: FormSignup, *, default_timezone: str) -> Pending:
    """The contact, created or updated through contacts.intake with no consent, and a pending
    sign-up per channel to confirm. Raises InputError (bad address) and IntakeConflict."""
    if form.sms_consent and not form.phone:
        raise InputError("give a mobile number to receive texts")
    intake = Intake(
        source=FORM_SOURCE,
        email=form.email,
        phone=form.phone,
        first_name=form.first_name,
        last_name=form.last_name,
        language=form.language or None,
    )
    contact, _ = take_in(session, intake, default_timezone=default_timezone, now=form.evidence.at)
    seen = form.evidence
    data: dict[str, Any] = {
        "form_url": seen.form_url,
        "ip": seen.ip,
        "user_agent": seen.user_agent,
        "signed_up_at": seen.at.isoformat(),
    }
    email = sms = None
    if form.email and contact.email_consent != ConsentStatus.OPTED_IN:
        email = _pending(session, contact, Channel.EMAIL, {**data, "form_text": seen.form_text})
    if form.sms_consent and contact.sms_consent != ConsentStatus.OPTED_IN:
        sms = _pending(session, contact, Channel.SMS, {**data, "disclosure": seen.sms_disclosure})
    return Pending(contact, email, sms)


def text_to_join(
    session: Session,
    sender: str,
    *,
    word: str,
    sequence: str,
    language: str,
    body: str,
    prompt: str,
    default_timezone: str,
    at: datetime,
) -> Pending:
    """A join keyword from `sender`: the contact (language set when the keyword says so) and a
    pending SMS sign-up whose evidence is the text and the confirmation prompt we answer."""
    intake = Intake(source=TEXT_SOURCE, phone=sender, language=language or None)
    contact, _ = take_in(session, intake, default_timezone=default_timezone, now=at)
    data = {
        "keyword": word,
        "sequence": sequence,
        "text": body[:160],
        "from": mask_phone(sender),
        "received_at": at.isoformat(),
        "disclosure": prompt,
    }
    return Pending(contact, None, _pending(session, contact, Channel.SMS, data, at=at))


def join_keyword(body: str, keywords: dict[str, str]) -> tuple[str, str] | None:
    """The join keyword a text is and its sequence, both sides folded as contacts.keywords
    folds ("Relief!" is RELIEF, "alivio" ALIVIO); None when the text is no join keyword."""
    word = keyword(body)
    sequences = {keyword(key): sequence for key, sequence in keywords.items()}
    return (word, sequences[word]) if word and word in sequences else None


def _pending(
    session: Session,
    contact: Contact,
    channel: Channel,
    data: dict[str, Any],
    *,
    at: datetime | None = None,
) -> Event:
    occurred = at or datetime.fromisoformat(str(data["signed_up_at"]))
    event = Event(
        kind=PENDING,
        occurred_at=occurred,
        contact_id=contact.id,
        channel=str(channel),
        user_agent=str(data.get("user_agent") or "")[:400] or None,
        data=data,
    )
    session.add(event)
    session.flush()
    return event


def pending_sign_up(session: Session, event_id: int, channel: Channel) -> Event | None:
    """A pending (not yet confirmed) sign-up by its id, on that channel."""
    event = session.get(Event, event_id, with_for_update=True)
    if event is None or event.kind != PENDING or event.channel != str(channel):
        return None
    return event


def confirm_email(
    session: Session, event_id: int, *, ip: str, user_agent: str, at: datetime
) -> Contact | None:
    """Opt the address in on the click of its signed link; None when there is nothing (left) to
    confirm. The ledger's evidence names the form (text, URL, time, IP, user agent) and the
    click (time, IP, user agent)."""
    event = pending_sign_up(session, event_id, Channel.EMAIL)
    contact = session.get(Contact, event.contact_id) if event and event.contact_id else None
    if event is None or contact is None or contact.email is None or contact.erased_at:
        return None
    click = {"confirmed_at": at.isoformat(), "confirmed_ip": ip, "confirmed_user_agent": user_agent}
    evidence = json.dumps({**event.data, **click}, sort_keys=True)
    source = TEXT_SOURCE if "received_at" in event.data else FORM_SOURCE  # texted back
    how = f"{source}, confirmed by email link"
    if contact.email_consent == ConsentStatus.OPTED_OUT or is_suppressed(
        session, Channel.EMAIL, contact.email
    ):
        opt_in_again(session, contact, Channel.EMAIL, how=how, evidence=evidence, at=at)
    else:
        record_consent(
            session,
            contact.id,
            Channel.EMAIL,
            ConsentStatus.OPTED_IN,
            source=how,
            evidence=evidence,
            occurred_at=at,
        )
    _confirmed(event, click)
    return contact


def confirm_sms(
    session: Session, contact: Contact, sender: str, *, body: str, at: datetime, within: timedelta
) -> Event | None:
    """A YES from the contact's phone to its newest pending SMS sign-up (younger than `within`):
    the written consent, with the sign-up's evidence and the reply. None when no sign-up is
    pending: the YES is then an ordinary START (contacts.keywords)."""
    if contact.phone != sender:
        return None
    event = session.scalar(
        select(Event)
        .where(
            Event.contact_id == contact.id,
            Event.kind == PENDING,
            Event.channel == str(Channel.SMS),
            Event.occurred_at >= at - within,
        )
        .order_by(Event.occurred_at.desc(), Event.id.desc())
        .limit(1)
    )
    if event is None:
        return None
    reply = {"reply": body[:160], "replied_at": at.isoformat(), "replied_from": mask_phone(sender)}
    evidence = json.dumps({**event.data, **reply}, sort_keys=True)
    joined = "keyword" in event.data
    how = "text-to-join, confirmed by YES" if joined else "sign-up form, confirmed by YES"
    # The reply comes from the phone itself: the one way a text opt-out is lifted (TCPA, CTIA).
    opt_in_again(
        session, contact, Channel.SMS, how=how, evidence=evidence, at=at, replied_from=sender
    )
    _confirmed(event, reply)
    return event


def _confirmed(event: Event, proof: dict[str, str]) -> None:
    event.kind = CONFIRMED
    event.data = {**event.data, **proof}  # a new dict: SQLAlchemy sees the change


def ask_for_email(event: Event) -> None:
    """Note on a confirmed text-to-join that its reply asked for an email address."""
    event.data = {**event.data, "email_asked": True}


@dataclass(frozen=True)
class TextedAddress:
    """An email address texted back after we asked for one. `pending` is the email sign-up to
    confirm by its link; None when another contact holds the address (it was not taken)."""

    address: str
    pending: Event | None


def take_emailed_address(
    session: Session, contact: Contact, body: str, *, at: datetime, within: timedelta
) -> TextedAddress | None:
    """An email address texted back after we asked for one: recorded on the contact through
    contacts.intake with a pending email sign-up, never opted in (email consent is confirmed by
    its own link, as for the form). None when we did not ask, or the text holds no address, or
    more than one ("ana@x.com or ana@y.com": we do not guess), or one email-validator refuses;
    "I'm @ work" holds none. An address another contact holds is not moved: a text proves who
    holds the phone, not the inbox, and merging on it would hand a stranger that contact's
    history; a note on the texter's timeline tells staff (`HELD_ELSEWHERE`)."""
    if contact.email is not None or not contact.phone:
        return None
    asked = session.scalar(
        select(Event.id)
        .where(
            Event.contact_id == contact.id,
            Event.kind == CONFIRMED,
            Event.channel == str(Channel.SMS),
            Event.occurred_at >= at - within,
        )
        .where(Event.data["email_asked"].as_boolean().is_(True))
        .limit(1)
    )
    found = {match.lower() for match in _EMAIL_IN_TEXT.findall(body)}
    if asked is None or len(found) != 1:
        return None
    try:
        address = normalize_email(found.pop())
    except InputError:
        return None
    texted = {"text": body[:160], "from": mask_phone(contact.phone), "received_at": at.isoformat()}
    try:
        take_in(
            session,
            Intake(source=TEXT_SOURCE, email=address, phone=contact.phone),
            default_timezone=contact.timezone,
            now=at,
        )
    except IntakeConflict as exc:
        note = {"from": texted["from"], "email": mask_email(address), "why": str(exc)}
        session.add(Event(kind=HELD_ELSEWHERE, occurred_at=at, contact_id=contact.id, data=note))
        return TextedAddress(address, None)
    return TextedAddress(address, _pending(session, contact, Channel.EMAIL, texted, at=at))


def purge_unconfirmed(session: Session, *, now: datetime, days: int) -> int:
    """Forget sign-ups nobody confirmed within `days`: the pending events (they hold an IP
    address and a user agent), and the contacts they created, when nothing else holds them (no
    consent in the ledger, no confirmed sign-up). Returns how many contacts were removed."""
    cutoff = now - timedelta(days=days)
    stale = list(
        session.scalars(select(Event).where(Event.kind == PENDING, Event.occurred_at < cutoff))
    )
    contact_ids = {event.contact_id for event in stale if event.contact_id is not None}
    for event in stale:
        session.delete(event)
    session.flush()
    removable = list(
        session.scalars(
            select(Contact.id).where(
                Contact.id.in_(contact_ids),
                Contact.source.in_((FORM_SOURCE, TEXT_SOURCE)),
                ~exists().where(ConsentEvent.contact_id == Contact.id),
                ~exists().where(
                    Event.contact_id == Contact.id, Event.kind.in_((PENDING, CONFIRMED))
                ),
            )
        )
    )
    if removable:  # ON DELETE CASCADE takes the tags; events keep no contact id
        session.execute(delete(Contact).where(Contact.id.in_(removable)))
    return len(removable)
