"""Consent per channel as an append-only ledger, and the one rule for events that arrive late.

TCPA: marketing texts need prior express written consent, so an SMS opt-in must carry evidence.

Consent events do not arrive in the order they happened: a re-imported old sign-up form, a
provider's delayed unsubscribe event, a STOP and a START crossing each other. The rule, here
and nowhere else (`outranked` is its only expression; `record_consent`, `contacts.optout` and
its batched form all use it):

* the ledger records every event, each with its own time (when it happened, not when we heard);
* a contact's current status on a channel is the status of its newest ledger event by
  `occurred_at`; an event outranks another if it is later, or if it is an opt-out at the same
  instant (when in doubt, do not send: CAN-SPAM, TCPA);
* an opt-out always writes the suppression that every send checks, whatever its time
  (`contacts.optout`); an opt-in lifts it only if no opt-out outranks it
  (`contacts.optout.opt_in_again`).
"""

from __future__ import annotations

from datetime import datetime
from functools import cache

from sqlalchemy import ColumnElement, Update, and_, bindparam, exists, or_, update
from sqlalchemy.orm import Session

from core.errors import InputError
from storage.models import Base, Channel, ConsentEvent, ConsentStatus, Contact

_LEDGER = Base.metadata.tables[ConsentEvent.__tablename__]
_CONTACTS = Base.metadata.tables[Contact.__tablename__]
# Parameters of the statements below (also bound by contacts.optout's batched form).
CONTACT, AT = "consent_contact", "consent_at"


def outranked(
    channel: Channel | str, status: ConsentStatus | str, *, by: ConsentStatus | None = None
) -> ColumnElement[bool]:
    """EXISTS a ledger event of :consent_contact on `channel` (of status `by`, if given) that
    outranks an event of `status` at :consent_at: a later one, or an opt-out at the same instant.
    """
    at = bindparam(AT, type_=_LEDGER.c.occurred_at.type)
    outranks = _LEDGER.c.occurred_at > at
    if status != ConsentStatus.OPTED_OUT:
        outranks = or_(
            outranks,
            and_(_LEDGER.c.occurred_at == at, _LEDGER.c.status == str(ConsentStatus.OPTED_OUT)),
        )
    conditions = [
        _LEDGER.c.contact_id == bindparam(CONTACT),
        _LEDGER.c.channel == str(channel),
        outranks,
    ]
    if by is not None:
        conditions.append(_LEDGER.c.status == str(by))
    return exists().where(*conditions)


@cache  # four statements in all, built once: a batch of opt-outs runs one per channel
def follow_newest(channel: Channel | str, status: ConsentStatus | str) -> Update:
    """Set the contact's current status on `channel` to `status`, unless a ledger event outranks
    the one at :consent_at. Run after the event is in the ledger; one row or an executemany."""
    column = _CONTACTS.c[f"{channel}_consent"]
    return (
        update(_CONTACTS)
        .where(
            _CONTACTS.c.id == bindparam(CONTACT),
            column.is_distinct_from(str(status)),
            ~outranked(channel, status),
        )
        .values({column: str(status)})
    )


def record_consent(
    session: Session,
    contact_id: int,
    channel: Channel | str,
    status: ConsentStatus | str,
    *,
    source: str,
    evidence: str = "",
    occurred_at: datetime,
) -> ConsentEvent:
    if channel == Channel.SMS and status == ConsentStatus.OPTED_IN and not evidence.strip():
        raise InputError("an SMS opt-in needs written consent evidence (TCPA)")
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise InputError(f"no contact {contact_id}")
    event = ConsentEvent(
        contact_id=contact_id,
        channel=str(channel),
        status=str(status),
        occurred_at=occurred_at,
        source=source,
        evidence=evidence,
    )
    session.add(event)
    session.flush()
    session.execute(follow_newest(channel, status), {CONTACT: contact_id, AT: event.occurred_at})
    session.expire(contact, [f"{channel}_consent", "updated_at"])
    return event
