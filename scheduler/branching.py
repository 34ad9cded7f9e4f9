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

A waiting enrollment sleeps until its deadline (Enrollment.wait_until), out of the planner's
ready walk, unless its event comes: once per planner tick, `Wakeups` reads the newest event id
and, when events came since its last looks, one UPDATE wakes (wait_until = now) the waiting
enrollments with a deciding event among them. Two days of waiting cost nothing per enrollment
until one of the two happens. The events that decide (BOOKING_CLICK, REPLY) are written once,
here, and both the wake-up and the decision read them.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    bindparam,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased

from campaigns.definitions import Sequence
from campaigns.paths import BOOKING_LINK, Decision, Paths
from contacts.keywords import Intent
from storage.models import Campaign, Enrollment, Event, Message
from storage.sql_lists import among

#: An inbound text's intent that is a message for a person, not a keyword (contacts.keywords).
REPLY_INTENT = str(Intent.OTHER)
#: The events that decide a branch, as SQL (the one statement of the rule): a click on the
#: booking link (of the branch's campaign: matched by the reader) and a text that is no keyword.
BOOKING_CLICK: ColumnElement[bool] = and_(
    Event.kind == "clicked", Event.data["destination"].as_string() == BOOKING_LINK
)
REPLY: ColumnElement[bool] = and_(
    Event.kind == "inbound", Event.data["intent"].as_string() == REPLY_INTENT
)


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


class _Ready(Protocol):
    """What a planner batch's row (scheduler.planner.Ready) tells about a waiting enrollment."""

    @property
    def id(self) -> int: ...
    @property
    def contact_id(self) -> int: ...
    @property
    def campaign_id(self) -> int: ...
    @property
    def planned_step(self) -> int: ...
    @property
    def settled_at(self) -> datetime | None: ...


@dataclass
class Branches:
    """A planner batch's enrollments waiting on a branch: which are decided, which sleep on
    until their deadline, and the paths taken, written with the batch."""

    waiting: list[Waiting] = field(default_factory=list)
    paths: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    waits: list[tuple[int, datetime]] = field(default_factory=list)  # (enrollment, deadline)

    def waits_on(self, row: _Ready, sequence: Sequence, paths: Paths) -> bool:
        """Whether `row`'s last step branches (then it is kept, to be decided with the batch)."""
        if row.planned_step < 0 or (decision := paths.decisions[row.planned_step]) is None:
            return False
        step = sequence.steps[row.planned_step]
        assert step.then is not None and row.settled_at is not None
        whose = (row.id, row.contact_id, row.campaign_id)
        self.waiting.append(Waiting(*whose, step.name, row.settled_at, step.then.within, decision))
        return True

    def decide(self, session: Session, now: datetime) -> list[Decided]:
        """The branches decided now (their paths recorded); the others sleep to the deadline."""
        decisions = decide(session, self.waiting, now)
        decided = {item.waiting.id for item in decisions}
        self.waits = [(w.id, w.deadline) for w in self.waiting if w.id not in decided]
        for item in decisions:
            self.paths[item.path].append(item.waiting.id)
        return decisions

    def write(self, connection: Connection) -> None:
        """One update per branch taken ("first-visit:clicked" after what came before), and one
        executemany for those still waiting: each sleeps until its deadline."""
        dialect = connection.dialect.name
        for taken, ids in self.paths.items():
            so_far = func.coalesce(Enrollment.path.concat(","), "")
            connection.execute(
                update(Enrollment)
                .where(among(Enrollment.id, ids, dialect))
                .values(path=so_far.concat(taken), wait_until=None)
            )
        if self.waits:
            connection.execute(
                update(Enrollment)
                .where(Enrollment.id == bindparam("waiting"))
                .values(wait_until=bindparam("until")),
                [{"waiting": id_, "until": until} for id_, until in self.waits],
            )


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
    columns = (Event.contact_id, Event.campaign_id, Event.occurred_at)
    for contact_id, campaign_id, at in _events_since(session, waiting, BOOKING_CLICK, columns):
        found[(contact_id, campaign_id)].append(at)
    return found


def _replies(session: Session, waiting: list[Waiting]) -> dict[int, list[datetime]]:
    """Times each contact texted something other than a keyword since the earliest send."""
    if not waiting:
        return {}
    found: dict[int, list[datetime]] = defaultdict(list)
    columns = (Event.contact_id, Event.occurred_at)
    for contact_id, at in _events_since(session, waiting, REPLY, columns):
        found[contact_id].append(at)
    return found


def _events_since(
    session: Session, waiting: list[Waiting], rule: ColumnElement[bool], columns: tuple[Any, ...]
) -> Iterable[Any]:
    """One read of the waiting contacts' events that `rule` says decide, from the earliest
    waiting send on (the (contact, occurred_at) index); each row is matched to its enrollment's
    time by the caller."""
    dialect = session.get_bind().dialect.name
    contacts = sorted({item.contact_id for item in waiting})
    since = min(item.sent_at for item in waiting)
    return session.execute(
        select(*columns).where(
            among(Event.contact_id, contacts, dialect), Event.occurred_at >= since, rule
        )
    )


def wake(connection: Connection, now: datetime, after: int | None) -> int:
    """Wake (wait_until = now) the enrollments waiting on a branch whose deciding event came
    within their time: since their step's send (its settle time, as the planner reads it) and
    before their deadline (wait_until). Returns how many woke.

    `after`: only events with a greater id, and the enrollments are found from those events'
    contacts and the campaigns (the (campaign, contact) unique index) after a range read of
    the new events by primary key. None (once, when a planner starts): one scan of the
    enrollments for those waiting, each one's events read through their (contact, occurred_at)
    index. Run first in its transaction, before any other row lock it takes (Planner.tick).

    Idempotent (only wait_until > now changes), so several planners may run it at once; on
    PostgreSQL the rows are locked in id order first, so two of them never deadlock, and a row
    another planner's batch holds is waited for, then woken if it still sleeps. A woken
    enrollment whose event turns out not to be the one its branch waits for (a click on a
    branch waiting for a reply) is read once and sleeps again."""
    waiting = aliased(Enrollment, name="waiting")
    sent = (
        select(func.coalesce(Message.sent_at, Message.updated_at))
        .where(Message.enrollment_id == waiting.id, Message.step_index == waiting.planned_step)
        .correlate(waiting)  # inside `came`: the enrollment two levels up
        .scalar_subquery()
    )
    arrived = [] if after is None else [Event.id > after]
    came = exists().where(
        Event.contact_id == waiting.contact_id,
        *arrived,
        Event.occurred_at >= sent,
        Event.occurred_at < waiting.wait_until,
        or_(REPLY, and_(BOOKING_CLICK, Event.campaign_id == waiting.campaign_id)),
    )
    chosen = select(waiting.id).where(waiting.wait_until > now, came)
    if after is not None:
        new = select(Event.contact_id).where(Event.id > after, or_(BOOKING_CLICK, REPLY))
        chosen = chosen.where(
            waiting.campaign_id.in_(select(Campaign.id)), waiting.contact_id.in_(new)
        )
    chosen = chosen.order_by(waiting.id).with_for_update()
    woken = connection.execute(
        update(Enrollment).where(Enrollment.id.in_(chosen)).values(wait_until=now)
    )
    return woken.rowcount


@dataclass
class Wakeups:
    """One planner's look for deciding events, once per tick (kept in memory per planner).

    The newest event id read at each of the last two ticks: a tick wakes for the events after
    the older one, so an event whose id was taken before a look but committed after it
    (PostgreSQL hands ids out before the commit) is still seen at the next tick. When no
    event came since then, a tick costs one read of max(events.id). A planner that starts, or
    that ran while no active campaign branched, looks at every waiting enrollment once. An
    event missed all the same is still read at the deadline: the branch is decided by the
    time the event happened, only later."""

    newest: deque[int] = field(default_factory=lambda: deque(maxlen=2))

    def look(self, session: Session, now: datetime) -> int:
        """Wake the enrollments whose event came; returns the newest event id read, to pass to
        `seen` once the transaction committed."""
        newest = session.scalar(select(func.max(Event.id))) or 0
        after = self.newest[0] if self.newest else None
        if after is None or newest > after:
            wake(session.connection(), now, after)
        return newest

    def seen(self, newest: int) -> None:
        self.newest.append(newest)

    def forget(self) -> None:
        self.newest.clear()
