"""A person's own opt-out and opt-in, applied everywhere at once.

An opt-out writes a suppression (what every send checks), a consent-ledger entry (the history)
and an event (the reports), in the caller's transaction, so it is durable before any response.
There is one implementation, `opt_out_many`, a handful of set-based statements for a whole
batch (the web server's group-committed one-click unsubscribes); `opt_out` is a batch of one.
Every entry point uses it: the unsubscribe and preference pages, RFC 8058 one-click, Twilio
STOP, SendGrid unsubscribe and spam reports, the dashboard and `nurture contacts suppress`.
An opt-out's event names the message, campaign and step that caused it: the request's own, or
for a person's request that names none (a token, a STOP reply) the last message sent to them
on that channel within a window (`contacts.credit`, one statement per batch). Late events
follow the rule in `contacts.consent`. A text opt-out is lifted only by a reply
from that phone (`opt_in_again`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from contacts.consent import AT, CONTACT, follow_newest, outranked, record_consent
from contacts.credit import CREDITED_REASONS, SentMessage, last_sent, sent_messages
from contacts.suppressions import (
    NewSuppression,
    active_suppression,
    address_hash,
    lift_by_person,
    suppress_many,
)
from core.errors import InputError
from core.redact import mask_phone
from storage.models import (
    Base,
    Channel,
    ConsentEvent,
    ConsentStatus,
    Contact,
    Event,
    SuppressionReason,
)

_CONTACTS = Base.metadata.tables[Contact.__tablename__]
_LEDGER = Base.metadata.tables[ConsentEvent.__tablename__]
_EVENTS = Base.metadata.tables[Event.__tablename__]
# Built once: a statement made afresh for every batch cost more CPU than running it (SQLAlchemy
# builds and keys it each time), inside the writer's turn that the unsubscribes wait on.
_ADDRESSES = select(_CONTACTS.c.id, _CONTACTS.c.email, _CONTACTS.c.phone).where(
    _CONTACTS.c.id.in_(bindparam("ids", expanding=True))
)
_ADD_TO_LEDGER = insert(_LEDGER)
_ADD_EVENTS = insert(_EVENTS)


class StoppedByText(InputError):
    """Texts to a number were stopped by a text from it: only a reply from that phone starts
    them again (see `opt_in_again`)."""


@dataclass(frozen=True)
class OptOut:
    """One person's request to stop a channel, stamped with when they made it."""

    contact_id: int
    channel: Channel
    source: str
    at: datetime
    reason: SuppressionReason = SuppressionReason.UNSUBSCRIBED
    #: The message it came from, if it names one (its campaign and step are read from it).
    message_id: int | None = None


def opt_out(
    session: Session,
    contact: Contact,
    channel: Channel | str,
    *,
    reason: SuppressionReason | str = SuppressionReason.UNSUBSCRIBED,
    source: str,
    at: datetime,
    message_id: int | None = None,
) -> bool:
    """Suppress the contact's address on a channel; True if it was not suppressed before."""
    request = OptOut(
        contact.id,
        Channel(channel),
        source,
        at,
        SuppressionReason(reason),
        message_id,
    )
    return opt_out_many(session, [request])[0]


def opt_out_many(session: Session, requests: Sequence[OptOut]) -> list[bool]:
    """Apply the opt-outs in the session's transaction; for each, True if it newly suppressed its
    address. A contact without an address on the channel (or forgotten) is skipped: False."""
    session.flush()
    ids = sorted({request.contact_id for request in requests})
    found = session.execute(_ADDRESSES, {"ids": ids})
    addresses = {row.id: {Channel.EMAIL: row.email, Channel.SMS: row.phone} for row in found}
    done = [
        (request, address)
        for request in requests
        if (address := addresses.get(request.contact_id, {}).get(request.channel))
    ]
    if not done:
        return [False] * len(requests)
    newly = suppress_many(
        session,
        [
            NewSuppression(str(r.channel), address, str(r.reason), r.source, r.at)
            for r, address in done
        ],
    )
    session.execute(
        _ADD_TO_LEDGER,
        [
            {
                "contact_id": r.contact_id,
                "channel": str(r.channel),
                "status": str(ConsentStatus.OPTED_OUT),
                "occurred_at": r.at,
                "source": r.source,
                "evidence": f"{r.reason} via {r.source}",
            }
            for r, _ in done
        ],
    )
    for channel in (Channel.EMAIL, Channel.SMS):
        rows = [  # by contact: row locks taken in one order (see suppress_many)
            {CONTACT: r.contact_id, AT: r.at}
            for r, _ in sorted(done, key=lambda pair: pair[0].contact_id)
            if r.channel == channel
        ]
        if rows:
            session.execute(follow_newest(channel, ConsentStatus.OPTED_OUT), rows)
    credits = _credits(session, [r for r, _ in done])
    session.execute(
        _ADD_EVENTS,
        [
            {
                "kind": "unsubscribed",
                "occurred_at": r.at,
                "contact_id": r.contact_id,
                "channel": str(r.channel),
                "message_id": credit.message_id if credit else None,
                "campaign_id": credit.campaign_id if credit else None,
                "step_index": credit.step_index if credit else None,
                "data": {"reason": str(r.reason), "source": r.source},
            }
            for r, _ in done
            for credit in [credits.get(r)]
        ],
    )
    _expire_loaded_contacts(session, set(ids))
    results = []
    for request in requests:
        address = addresses.get(request.contact_id, {}).get(request.channel)
        key = (str(request.channel), address_hash(session, request.channel, address or ""))
        results.append(address is not None and key in newly)
        newly.discard(key)  # a second request for the same address found it suppressed
    return results


def _guessed(request: OptOut, named: Mapping[int, SentMessage]) -> bool:
    """A person's own request whose message we do not have (it named none, or a message no
    longer stored: a preview's link, an erased history) is credited to their last one."""
    return request.reason in CREDITED_REASONS and (
        request.message_id is None or request.message_id not in named
    )


def _credits(session: Session, requests: Sequence[OptOut]) -> dict[OptOut, SentMessage]:
    """The message each event is credited to: the one the request names (an unsubscribe link
    names the message that carried it, a provider's event its message), its campaign and step
    read by primary key; for a person's own request naming no stored message, their last
    message on that channel (contacts.credit). A named message that is gone is never written
    as the event's (its foreign key would refuse the whole batch). At most two reads a batch."""
    named = sent_messages(session, {r.message_id for r in requests if r.message_id is not None})
    guessed = [r for r in requests if _guessed(r, named)]
    last = (
        last_sent(session, {(r.contact_id, r.channel) for r in guessed}, max(r.at for r in guessed))
        if guessed
        else {}
    )
    credits: dict[OptOut, SentMessage] = {}
    for r in requests:
        found = named.get(r.message_id) if r.message_id is not None else None
        if found is None and _guessed(r, named):
            found = last.get((r.contact_id, r.channel))
        if found is not None:
            credits[r] = found
    return credits


def opt_in_again(
    session: Session,
    contact: Contact,
    channel: Channel | str,
    *,
    how: str,
    evidence: str,
    at: datetime,
    replied_from: str | None = None,
) -> bool:
    """The person's own explicit re-opt-in (START reply, preference page): the only way back.

    Texts stopped by a text (STOP, a plain request to stop, a carrier's STOP error) are lifted
    only by a reply from that very phone (`replied_from`, the number the START came from): a
    preference-page link in a forwarded email, or anyone else, cannot put a phone back on the
    list, because TCPA consent to texts is the phone's subscriber's to give, and CTIA has the
    opt-out undone by the same channel (START). Raises StoppedByText, recording nothing.

    Otherwise recorded whatever its time; it re-subscribes (lifts the suppression) only if no
    opt-out in the ledger outranks it (contacts.consent): True if it did."""
    address = contact.address(channel)
    if address is None:
        return False
    if (
        Channel(channel) == Channel.SMS
        and replied_from != address
        and stopped_by_text(session, address)
    ):
        raise StoppedByText(
            f"texts to {mask_phone(address)} were stopped by a text from that phone: "
            "only a START reply from it resumes them"
        )
    when = at
    record_consent(
        session,
        contact.id,
        channel,
        ConsentStatus.OPTED_IN,
        source=how,
        evidence=evidence,
        occurred_at=when,
    )
    session.add(
        Event(
            kind="resubscribed",
            occurred_at=when,
            contact_id=contact.id,
            channel=str(channel),
            data={"how": how},
        )
    )
    later_opt_out = outranked(channel, ConsentStatus.OPTED_IN, by=ConsentStatus.OPTED_OUT)
    if session.scalar(select(later_opt_out), {CONTACT: contact.id, AT: when}):
        session.flush()
        return False
    lift_by_person(session, channel, address, how, at=when)
    session.flush()
    return True


def stopped_by_text(session: Session, phone: str) -> bool:
    """Whether texts to the number are stopped by a text from it (suppression reason STOP:
    a STOP keyword, a free-text revocation, Twilio's 21610 "replied STOP")."""
    blocked = active_suppression(session, Channel.SMS, phone)
    return blocked is not None and blocked.reason == SuppressionReason.STOP


def _expire_loaded_contacts(session: Session, ids: set[int]) -> None:
    """Consent columns were updated behind the ORM's back: loaded contacts reload them."""
    for loaded in list(session.identity_map.values()):
        if isinstance(loaded, Contact) and loaded.id in ids:
            session.expire(loaded, ["email_consent", "sms_consent", "updated_at"])
