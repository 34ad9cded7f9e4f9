"""Inbound texts that were not a clear keyword, for staff to read, and staff marking one as a
revocation.

The FCC's 2025 revocation rule (47 CFR 64.1200(a)(10)) lets a person revoke consent "by any
reasonable means": contacts.keywords acts at once on the words it is sure of, and records the
rest (kind "inbound", intent "other") beside the free-text revocations it acted on (kind
"inbound_flagged"). A person reads both here; when an unclear text was in fact a request to
stop ("ugh not again", "who gave you my number"), an editor marks it, which is the one opt-out
(contacts.optout.opt_out) with reason STOP, so only START from that phone lifts it. The mark is
an event of its own (kind "inbound_marked", naming the text and who marked it): that is the
record of who did it, and what makes a second mark do nothing.

The texts are grouped as conversations, one per contact, newest first: what they wrote, the
campaign texts we sent them, and staff answers (events "staff_reply", scheduler.staff_replies),
so whoever answers sees what the person is replying to.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from contacts.optout import opt_out
from core.errors import InputError, NotFound
from core.redact import mask_phone, redact
from storage.models import Campaign, Channel, Contact, Event, Message, SuppressionReason

INBOUND_KINDS = ("inbound", "inbound_flagged")
MARKED = "inbound_marked"
#: Intents of texts that were not a clear keyword: acted-on free text, and unclear text.
UNCLEAR = ("revoke", "other")
STAFF_REPLY = "staff_reply"
#: Per contact: how many of our texts and staff answers a conversation shows.
OURS_PER_CONTACT = 20


@dataclass(frozen=True)
class InboundText:
    event_id: int
    received_at: datetime
    sender: str  # masked when received (core.redact)
    body: str  # with any email address or phone number in it masked (core.redact)
    intent: str
    language: str
    contact_id: int | None
    marked_by: str | None = None
    marked_at: datetime | None = None

    @property
    def markable(self) -> bool:
        """An unclear text from a contact we hold, not marked yet."""
        return self.intent == "other" and self.contact_id is not None and self.marked_by is None


def recent_unclear(session: Session, limit: int = 200) -> list[InboundText]:
    """The newest inbound texts that were not a clear keyword, newest first, with their marks.
    A forgotten person's texts (their body and intent blanked) are not among them."""
    events = session.scalars(
        select(Event)
        .where(Event.kind.in_(INBOUND_KINDS), Event.data["intent"].as_string().in_(UNCLEAR))
        .order_by(Event.id.desc())
        .limit(limit)
    ).all()
    marks = _marks(session, {e.contact_id for e in events if e.contact_id is not None})
    texts = []
    for event in events:
        mark = marks.get(event.id)
        texts.append(
            InboundText(
                event.id,
                event.occurred_at,
                str(event.data.get("from") or "-"),
                redact(str(event.data.get("body") or "")),
                str(event.data.get("intent")),
                str(event.data.get("language") or "en"),
                event.contact_id,
                marked_by=str(mark.data.get("by")) if mark else None,
                marked_at=mark.occurred_at if mark else None,
            )
        )
    return texts


def mark_as_revocation(session: Session, event_id: int, *, by: str, at: datetime) -> bool:
    """Opt the sender of an unclear text out of texts, as a revocation by text, recording who
    said so; True if this marked it, False if it was marked (or acted on) already."""
    inbound = session.get(Event, event_id, with_for_update=True)  # two editors take turns
    if inbound is None or inbound.kind not in INBOUND_KINDS:
        raise NotFound(f"no inbound text {event_id}")
    intent = inbound.data.get("intent")
    if intent == "revoke":
        return False  # already a revocation, acted on when it arrived
    if intent != "other":
        raise InputError(f"inbound text {event_id} was a clear keyword, already answered")
    if inbound.contact_id is None:
        raise InputError(
            f"inbound text {event_id} came from a number we hold no contact for: "
            "suppress the number itself (nurture contacts suppress)"
        )
    if event_id in _marks(session, {inbound.contact_id}):
        return False  # marked already: nothing more to do
    contact = session.get(Contact, inbound.contact_id)
    if contact is None or not contact.phone or contact.erased_at is not None:
        raise InputError(f"the sender of inbound text {event_id} has no phone number on file")
    if mask_phone(contact.phone) != inbound.data.get("from"):
        raise InputError(
            f"the contact's phone number changed after inbound text {event_id}: "
            "suppress the number that texted (nurture contacts suppress)"
        )
    opt_out(
        session,
        contact,
        Channel.SMS,
        reason=SuppressionReason.STOP,
        source=f"inbound text {event_id} marked as a revocation by {by}",
        at=at,
    )
    session.add(
        Event(
            kind=MARKED,
            occurred_at=at,
            contact_id=contact.id,
            channel=str(Channel.SMS),
            data={"inbound_event": event_id, "by": by},
        )
    )
    session.flush()
    return True


def _marks(session: Session, contact_ids: set[int]) -> dict[int, Event]:
    """Staff marks on these contacts' texts, by the marked text's event id (the first mark)."""
    if not contact_ids:
        return {}
    found = session.scalars(
        select(Event)
        .where(Event.contact_id.in_(contact_ids), Event.kind == MARKED)
        .order_by(Event.id)
    )
    marks: dict[int, Event] = {}
    for mark in found:
        marked = mark.data.get("inbound_event")
        if isinstance(marked, int):
            marks.setdefault(marked, mark)
    return marks


@dataclass(frozen=True)
class Said:
    """One line of a conversation: theirs (`text` set) or ours (a campaign text or an answer)."""

    at: datetime
    outgoing: bool
    body: str  # masked as an inbound text's is; "" for a campaign text (not stored)
    note: str  # for ours: which step of which campaign, or who answered
    text: InboundText | None = None


@dataclass(frozen=True)
class Conversation:
    """A contact's texts and ours, newest first; a number we hold no contact for has one."""

    contact_id: int | None
    name: str
    sender: str  # masked
    said: tuple[Said, ...]


def conversations(session: Session, limit: int = 200) -> list[Conversation]:
    """The newest unclear texts grouped by contact, with what we sent them, newest first."""
    texts = recent_unclear(session, limit)
    ids = {text.contact_id for text in texts if text.contact_id is not None}
    contacts = {c.id: c for c in session.scalars(select(Contact).where(Contact.id.in_(ids)))}
    ours = _ours(session, ids)
    grouped: dict[int | str, list[InboundText]] = defaultdict(list)
    for text in texts:
        key = text.contact_id if text.contact_id is not None else f"#{text.event_id}"
        grouped[key].append(text)
    found: list[Conversation] = []
    for key, group in grouped.items():
        theirs = [Said(t.received_at, False, t.body, "", t) for t in group]
        contact = contacts.get(key) if isinstance(key, int) else None
        said = sorted([*theirs, *ours.get(contact.id, [])] if contact else theirs, key=_newest)
        name = f"{contact.first_name} {contact.last_name}".strip() if contact else ""
        found.append(Conversation(contact.id if contact else None, name or "-", group[0].sender,
                                  tuple(said)))  # fmt: skip
    return sorted(found, key=lambda c: _newest(c.said[0]))


def _newest(said: Said) -> tuple[float, int]:
    return (-said.at.timestamp(), 0 if said.text is None else -said.text.event_id)


def _ours(session: Session, contact_ids: set[int]) -> dict[int, list[Said]]:
    """Campaign texts sent to these contacts, and staff answers: the newest of each, per contact
    (two queries for the page, not two per contact)."""
    found: dict[int, list[Said]] = defaultdict(list)
    if not contact_ids:
        return found
    wanted = sorted(contact_ids)
    answers = session.scalars(
        select(Event)
        .where(Event.contact_id.in_(wanted), Event.kind == STAFF_REPLY)
        .order_by(Event.id.desc())
    )
    for e in answers:
        said = found[e.contact_id or 0]
        if len(said) < OURS_PER_CONTACT:
            body = redact(str(e.data.get("body") or ""))
            said.append(Said(e.occurred_at, True, body, f"answered by {e.data.get('by') or '-'}"))
    sent = session.execute(
        select(Message.contact_id, Message.sent_at, Message.step_index, Campaign.name)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(
            Message.contact_id.in_(wanted),
            Message.channel == str(Channel.SMS),
            Message.sent_at.is_not(None),
        )
        .order_by(Message.sent_at.desc())
    )
    counted: dict[int, int] = defaultdict(int)
    for contact_id, at, step, name in sent:
        counted[contact_id] += 1
        if at is not None and counted[contact_id] <= OURS_PER_CONTACT:
            found[contact_id].append(Said(at, True, "", f"step {step + 1} of campaign {name}"))
    return found
