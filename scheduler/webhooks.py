"""The webhook deliverer: a job of its own on the worker's clock (scheduler.clock), every
`INTERVAL` seconds, so a slow or dead receiver never holds up planning or sending.

Each tick does two things, each in short transactions of its own:

1. Hand out: new events of the kinds an endpoint wants become deliveries, one per (endpoint,
   event) by a unique constraint and ON CONFLICT DO NOTHING, so two workers ticking at once
   make each delivery once. Nothing is added to the click or unsubscribe paths: events are
   read from the table they already write. Ids are drawn when a row is inserted, not when it is
   committed, so an event may become visible after a later id was read (a transaction that
   drew its id first and committed second); each endpoint's cursor therefore looks back
   `REWIND` ids, and NOT EXISTS keeps what was handed out from being looked at twice (a plain
   cursor loses such rows: listmonk #3022).
2. Post: due deliveries are claimed (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite's write lock
   serialises), opt-outs first, then the other `contact.*` kinds and staff's test events, then
   `message.*` (a launch makes one `message.delivered` per person: a CRM must not learn of an
   opt-out hours late behind them). Their next attempt is moved a `LEASE` ahead so no other
   worker takes them, then they are posted outside any transaction, `POSTERS` at a time, each
   within a `DEADLINE` all told. A tick takes batch after batch until nothing is due or its
   `BUDGET` is spent. A 2xx delivers; anything else (a status, a refused connection, a
   timeout, a redirect: none are followed) is retried after `BACKOFF`, until a day after the
   delivery was made; then it is given up and says so.

Each post is scheduler.webhook_post.post: https to public addresses only (server-side request
forgery), one deadline all told, and a fixed phrase for staff when there is no answer. Failures
are logged with that post's detail and the endpoint's host only: a URL's path or query may hold
a token.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import Row, delete, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from core.signatures import HEADER, sign
from scheduler.webhook_payloads import PUBLIC_TYPE, body_of
from scheduler.webhook_post import post
from staff.webhook_endpoints import EVENT_TYPES
from storage.db import is_sqlite, transaction
from storage.models import Event, WebhookDelivery, WebhookEndpoint

log = logging.getLogger("nurture.webhooks")

INTERVAL = 2.0
REWIND = 1000
HAND_OUT_BATCH = 500
POST_BATCH = 32
POSTERS = 8
#: Seconds one post may take all told: connect, TLS, sending, and the answer's status line (a
#: receiver that trickles a byte a second is cut off, not waited on for minutes).
DEADLINE = 10.0
#: Seconds a tick goes on handing out and taking batches; the batch it is in always finishes.
BUDGET = 1.5
#: Longer than a batch of posts can take (POST_BATCH / POSTERS * DEADLINE = 40 s), so no other
#: worker takes a delivery that is still being posted.
LEASE = timedelta(seconds=60)
GIVE_UP_AFTER = timedelta(days=1)
#: Finished deliveries (delivered or given up) are kept this long for the dashboard, then
#: deleted, looked for at most every PRUNE_EVERY.
KEEP_FINISHED = timedelta(days=30)
PRUNE_EVERY = timedelta(hours=1)
#: Seconds before attempt n+1 after n failed attempts; the last repeats until the day is out.
BACKOFF = (10, 30, 120, 600, 1800, 3600, 7200)
USER_AGENT = "Nurture-Webhooks/1"


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=BACKOFF[min(max(attempts, 1), len(BACKOFF)) - 1])


@dataclass(frozen=True)
class Attempt:
    delivery_id: int
    endpoint_id: int
    url: str
    event_type: str
    body: bytes
    signature: str


@dataclass(frozen=True)
class Outcome:
    attempt: Attempt
    status: int | None
    #: What staff see when there was no answer (a fixed phrase); `detail` is for the log.
    error: str | None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class TickResult:
    handed_out: int = 0
    delivered: int = 0
    failed: int = 0


class Deliverer:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        *,
        allow_private: bool = False,
        deadline: float = DEADLINE,
        budget: float = BUDGET,
    ) -> None:
        """`allow_private`: [webhooks] allow_private_addresses (tests, local development)."""
        self.sessions, self.clock = sessions, clock
        self.allow_private, self.deadline, self.budget = allow_private, deadline, budget
        self.interval = INTERVAL
        self.pruned_at: datetime | None = None

    def tick(self) -> TickResult:
        until = time.monotonic() + self.budget
        now = self.clock()
        if self.pruned_at is None or now - self.pruned_at >= PRUNE_EVERY:
            self.pruned_at = now
            self.prune(now)
        result = TickResult(handed_out=self.hand_out(until))
        for outcome in self.deliver_due(until):
            if outcome.ok:
                result.delivered += 1
            else:
                result.failed += 1
        if result.handed_out or result.delivered or result.failed:
            log.info(
                "webhooks: %d handed out, %d delivered, %d failed",
                result.handed_out, result.delivered, result.failed,
            )  # fmt: skip
        return result

    def hand_out(self, until: float | None = None) -> int:
        """Deliveries for new events, a batch per endpoint per transaction, batch after batch
        while one was full and the tick's budget (`until`, monotonic) lasts: an opt-out behind
        a launch's thousands of deliveries is handed out within the tick, to be posted first.
        Looked for in a read first, so a tick with nothing to hand out takes no write lock
        (SQLite has one, which sending and clicks need)."""
        with transaction(self.sessions, immediate=False) as session:
            newest = _newest_event(session)
            if not any(
                _new_events(session, endpoint, newest, limit=1)
                or newest - endpoint.cursor_event_id > REWIND // 2
                for endpoint in _active_endpoints(session)
            ):
                return 0
        made = 0
        while True:
            full = False
            with transaction(self.sessions) as session:
                now, newest = self.clock(), _newest_event(session)
                for endpoint in _active_endpoints(session):
                    count = _hand_out_to(session, endpoint, newest, now)
                    made, full = made + count, full or count == HAND_OUT_BATCH
            if not full or until is None or time.monotonic() >= until:
                return made

    def prune(self, now: datetime) -> int:
        """Delete deliveries finished over KEEP_FINISHED ago, but never one whose event the
        hand-out still looks back on (its cursor's REWIND): that event would be sent again."""
        cutoff = now - KEEP_FINISHED
        behind = (
            select(WebhookEndpoint.cursor_event_id - REWIND)
            .where(WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .scalar_subquery()
        )
        with transaction(self.sessions) as session:
            # Core on the session's connection: its CursorResult has the rowcount.
            done = session.connection().execute(
                delete(WebhookDelivery).where(
                    or_(WebhookDelivery.delivered_at < cutoff, WebhookDelivery.gave_up_at < cutoff),
                    or_(WebhookDelivery.event_id.is_(None), WebhookDelivery.event_id <= behind),
                )
            )
            return int(done.rowcount)

    def deliver_due(self, until: float | None = None) -> list[Outcome]:
        """Batches of due deliveries, most urgent first, posted POSTERS at a time, until none is
        due or the tick's budget (`until`, monotonic) is spent; None: one batch."""
        with transaction(self.sessions, immediate=False) as session:
            due = select(WebhookDelivery.id).where(WebhookDelivery.next_attempt_at <= self.clock())
            if session.scalar(due.limit(1)) is None:
                return []
        outcomes: list[Outcome] = []
        with ThreadPoolExecutor(POSTERS, thread_name_prefix="webhook-post") as pool:
            while True:
                attempts = self._claim()
                if not attempts:  # another worker took them: no write for nothing
                    return outcomes
                batch = list(pool.map(self._post, attempts))
                self._record(batch)
                outcomes += batch
                if len(attempts) < POST_BATCH or until is None or time.monotonic() >= until:
                    return outcomes

    def _claim(self) -> list[Attempt]:
        with transaction(self.sessions) as session:
            now = self.clock()
            due = (
                select(WebhookDelivery.id)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(WebhookDelivery.next_attempt_at <= now, WebhookEndpoint.active.is_(True))
                .order_by(
                    WebhookDelivery.urgency, WebhookDelivery.next_attempt_at, WebhookDelivery.id
                )
                .limit(POST_BATCH)
            )
            if not is_sqlite(session.get_bind()):
                due = due.with_for_update(skip_locked=True, of=WebhookDelivery)
            ids = list(session.scalars(due))
            if not ids:
                return []
            claimed = session.scalars(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(ids), WebhookDelivery.next_attempt_at <= now)
                .values(next_attempt_at=now + LEASE, attempts=WebhookDelivery.attempts + 1)
                .returning(WebhookDelivery.id)
            ).all()
            timestamp = int(now.timestamp())
            attempts = []
            taken = set(claimed)
            for delivery_id in (i for i in ids if i in taken):  # most urgent first
                delivery = session.get_one(WebhookDelivery, delivery_id)
                endpoint = session.get_one(WebhookEndpoint, delivery.endpoint_id)
                body = body_of(session, delivery, now)
                attempts.append(
                    Attempt(delivery.id, endpoint.id, endpoint.url, delivery.event_type, body,
                            sign(endpoint.secret, body, timestamp))
                )  # fmt: skip
            return attempts

    def _post(self, attempt: Attempt) -> Outcome:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            HEADER: attempt.signature,
            "X-Nurture-Event": attempt.event_type,
            "X-Nurture-Delivery": str(attempt.delivery_id),
        }
        answer = post(
            attempt.url, attempt.body, headers, self.deadline, allow_private=self.allow_private
        )
        return Outcome(attempt, answer.status, answer.error, answer.detail)

    def _record(self, outcomes: list[Outcome]) -> None:
        with transaction(self.sessions) as session:
            now = self.clock()
            for outcome in outcomes:
                delivery = session.get(WebhookDelivery, outcome.attempt.delivery_id)
                if delivery is None:  # its endpoint was deleted meanwhile
                    continue
                _settle(delivery, outcome, now)
                endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
                if endpoint is not None:
                    endpoint.last_status = _status_text(delivery, outcome)
                    endpoint.last_attempt_at = now
                if not outcome.ok:
                    host = urlsplit(outcome.attempt.url).hostname
                    log.warning(
                        "webhook delivery %s to %s failed (attempt %d): %s",
                        delivery.id, host, delivery.attempts,
                        outcome.status or outcome.detail or outcome.error,
                    )  # fmt: skip


def _newest_event(session: Session) -> int:
    return session.scalar(select(func.coalesce(func.max(Event.id), 0))) or 0


def _active_endpoints(session: Session) -> list[WebhookEndpoint]:
    active = select(WebhookEndpoint).where(WebhookEndpoint.active.is_(True))
    return list(session.scalars(active.order_by(WebhookEndpoint.id)))


def _new_events(
    session: Session, endpoint: WebhookEndpoint, newest: int, *, limit: int
) -> list[Row[int, str]]:
    """Events of the endpoint's kinds from its cursor's look-back on, not yet handed to it."""
    kinds = [EVENT_TYPES[name] for name in endpoint.event_types if name in EVENT_TYPES]
    low = max(endpoint.after_event_id, endpoint.cursor_event_id - REWIND)
    handed = exists().where(
        WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.event_id == Event.id
    )
    found = session.execute(
        select(Event.id, Event.kind)
        .where(Event.id > low, Event.id <= newest, Event.kind.in_(kinds), ~handed)
        .order_by(Event.id)
        .limit(limit)
    )
    return list(found.all())


def _hand_out_to(session: Session, endpoint: WebhookEndpoint, newest: int, now: datetime) -> int:
    rows = _new_events(session, endpoint, newest, limit=HAND_OUT_BATCH)
    if rows:
        dialect = session.get_bind().dialect.name
        insert = (postgresql if dialect == "postgresql" else sqlite).insert(WebhookDelivery)
        session.execute(
            insert.on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"]),
            [
                {"endpoint_id": endpoint.id, "event_id": event_id,
                 "event_type": PUBLIC_TYPE[kind], "created_at": now, "attempts": 0,
                 "next_attempt_at": now}
                for event_id, kind in rows
            ],
        )  # fmt: skip
    # A full batch may have left events behind it: go on from the last one next tick.
    cursor = rows[-1].id if len(rows) == HAND_OUT_BATCH else newest
    session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint.id, WebhookEndpoint.cursor_event_id < cursor)
        .values(cursor_event_id=cursor)
    )
    return len(rows)


def _settle(delivery: WebhookDelivery, outcome: Outcome, now: datetime) -> None:
    delivery.last_status_code = outcome.status
    delivery.last_error = outcome.error[:300] if outcome.error else None
    if outcome.ok:
        delivery.delivered_at, delivery.next_attempt_at = now, None
        return
    last_chance = delivery.created_at + GIVE_UP_AFTER
    if now >= last_chance:
        delivery.gave_up_at, delivery.next_attempt_at = now, None
    else:
        delivery.next_attempt_at = min(now + backoff(delivery.attempts), last_chance)


def _status_text(delivery: WebhookDelivery, outcome: Outcome) -> str:
    said = f"HTTP {outcome.status}" if outcome.status is not None else (outcome.error or "failed")
    if outcome.ok:
        return f"delivered ({said})"
    if delivery.gave_up_at is not None:
        return f"gave up after {delivery.attempts} attempts ({said})"[:200]
    return f"failing, retrying ({said})"[:200]
