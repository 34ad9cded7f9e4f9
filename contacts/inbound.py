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
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from contacts.optout import opt_out
from core.errors import InputError, NotFound
from core.redact import mask_phone, redact
from storage.models import Channel, Contact, Event, SuppressionReason

INBOUND_KINDS = ("inbound", "inbound_flagged")
MARKED = "inbound_marked"
#: Intents of texts that were not a clear keyword: acted-on free text, and unclear text.
UNCLEAR = ("revoke", "other")


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
