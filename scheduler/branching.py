"""Deciding a branch (campaigns.paths): what did the contact do within its time since the step?

A branching step's enrollment waits after the step settles until either its event happened or
`within` has passed since the send (the settle time: a step skipped or failed waits the same,
and only a reply can still come). Then the first event decides:

- `clicked`: a click on the booking link (templates' `booking_link()`, recorded by web.links as
  a `clicked` event naming its destination) of any of this campaign's messages to the contact,
  at or after the send and before the deadline. While the branch waits, no later step of the
  enrollment is planned, so that is the step's message or an earlier one read late;
- `replied`: a text from the contact that is no keyword (web.webhooks.twilio: an `inbound`
  event with intent "other"); the reply also pauses the enrollment where the sequence says so
  (campaigns.replies), and the branch is taken once staff resume it;
- `otherwise`: neither, decided at the deadline.

The target's delay counts from that moment (the click, the reply, or the deadline), so a
reminder with no delay is due when the time is up. Two set-based reads per batch, over the
events' (contact, occurred_at) index, and only for the enrollments waiting on a branch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.paths import BOOKING_LINK, Decision
from contacts.keywords import Intent
from storage.models import Event
from storage.sql_lists import among

#: An inbound text's intent that is a message for a person, not a keyword (contacts.keywords).
REPLY_INTENT = str(Intent.OTHER)


@dataclass(frozen=True)
class Waiting:
    """An enrollment whose last step branches, waiting for its decision."""

    id: int
    contact_id: int
    campaign_id: int
    step: str  # the branching step's name, for the recorded path
    sent_at: datetime  # when the step settled: the branch's time counts from it
    within: timedelta
    decision: Decision

    @property
    def deadline(self) -> datetime:
        return self.sent_at + self.within


class Decided(NamedTuple):
    waiting: Waiting
    event: str  # "clicked", "replied" or "otherwise"
    at: datetime  # when it was decided: the target's delay counts from here
    target: int | None  # the next step's index; None: the sequence ends

    @property
    def path(self) -> str:
        return f"{self.waiting.step}:{self.event}"


def decide(session: Session, waiting: list[Waiting], now: datetime) -> list[Decided]:
    """The branches that can be decided now; the others keep waiting (not in the result)."""
    if not waiting:
        return []
    clicks = _booking_clicks(session, [w for w in waiting if w.decision.waits_for_click])
    replies = _replies(session, [w for w in waiting if w.decision.waits_for_reply])
    out: list[Decided] = []
    for item in waiting:
        found = [
            (at, event)
            for event, times in (
                ("clicked", clicks.get((item.contact_id, item.campaign_id), ())),
                ("replied", replies.get(item.contact_id, ())),
            )
            for at in _first_within(times, item.sent_at, item.deadline)
        ]
        if found:
            at, event = min(found)
        elif now >= item.deadline:
            at, event = item.deadline, "otherwise"
        else:
            continue
        out.append(Decided(item, event, at, item.decision.target(event)))
    return out


def _first_within(times: Iterable[datetime], since: datetime, until: datetime) -> list[datetime]:
    inside = [at for at in times if since <= at < until]
    return [min(inside)] if inside else []


def _booking_clicks(
    session: Session, waiting: list[Waiting]
) -> dict[tuple[int, int], list[datetime]]:
    """Booking-link click times per (contact, campaign) since the earliest waiting send."""
    if not waiting:
        return {}
    found: dict[tuple[int, int], list[datetime]] = defaultdict(list)
    columns = (Event.contact_id, Event.campaign_id, Event.occurred_at, Event.data)
    for contact_id, campaign_id, at, data in _events_since(session, waiting, "clicked", columns):
        if isinstance(data, dict) and data.get("destination") == BOOKING_LINK:
            found[(contact_id, campaign_id)].append(at)
    return found


def _replies(session: Session, waiting: list[Waiting]) -> dict[int, list[datetime]]:
    """Times each contact texted something other than a keyword since the earliest send."""
    if not waiting:
        return {}
    found: dict[int, list[datetime]] = defaultdict(list)
    columns = (Event.contact_id, Event.occurred_at, Event.data)
    for contact_id, at, data in _events_since(session, waiting, "inbound", columns):
        if isinstance(data, dict) and data.get("intent") == REPLY_INTENT:
            found[contact_id].append(at)
    return found


def _events_since(
    session: Session, waiting: list[Waiting], kind: str, columns: tuple[Any, ...]
) -> Iterable[Any]:
    """One read of `kind` events of the waiting contacts, from the earliest waiting send on
    (the (contact, occurred_at) index); each row is filtered per enrollment by the caller."""
    dialect = session.get_bind().dialect.name
    contacts = sorted({item.contact_id for item in waiting})
    since = min(item.sent_at for item in waiting)
    return session.execute(
        select(*columns).where(
            among(Event.contact_id, contacts, dialect),
            Event.occurred_at >= since,
            Event.kind == kind,
        )
    )
