"""Claiming due messages: one statement, so any number of workers share work without a
coordinator (PostgreSQL FOR UPDATE SKIP LOCKED; SQLite serialises writers with BEGIN IMMEDIATE).

Also the recovery rules after a crash: a claimed-but-unsent message is safely planned again; a
message left "sending" may or may not have reached the provider, so it becomes "uncertain".
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import literal, select, update
from sqlalchemy.orm import Session

from storage.db import is_sqlite
from storage.models import Campaign, CampaignState, Message, MessageState
from storage.sql_lists import among


def claim_due(
    session: Session, *, now: datetime, limit: int, worker: str, channel: str | None = None
) -> list[int]:
    # A paused campaign's messages are not even claimed (a claim would only release them);
    # a cancelled one's are, to be skipped with a reason.
    running = select(Campaign.id).where(Campaign.state != CampaignState.PAUSED)
    due = (
        select(Message.id)
        .where(
            # Inlined, not bound: SQLite's planner may use a partial index only when the query
            # spells out the index's own condition (sqlite.org/partialindex.html, 3.2).
            Message.state == literal(str(MessageState.PLANNED), literal_execute=True),
            Message.due_at <= now,
            Message.campaign_id.in_(running),
        )
        .order_by(Message.due_at, Message.id)
        .limit(limit)
    )
    if channel is not None:
        due = due.where(Message.channel == channel)
    if not is_sqlite(session.get_bind()):
        due = due.with_for_update(skip_locked=True)
    # Core statements on the session's connection: the ORM's paths cost more than the SQL here.
    connection = session.connection()
    ids = list(connection.scalars(due))
    if ids:
        connection.execute(
            update(Message)
            .where(
                among(Message.id, ids, connection.dialect.name),
                unindexed(Message.state) == MessageState.PLANNED,
            )
            .values(state=MessageState.CLAIMED, claimed_by=worker, claimed_at=now)
        )
    return ids


def unindexed(column: Any) -> Any:
    """`column || ''`: the same value, which no index serves, so that a guard on a message's
    state beside `id IN (...)` is checked on the rows found by id. Given the bare column, SQLite
    walks the (state, due_at) index through every message in that state: the whole backlog of
    planned messages, on every claim."""
    return column.concat("")


def recover_stale(session: Session, *, now: datetime, timeout: timedelta) -> tuple[int, int]:
    """Return (re-planned, made uncertain) for what a stopped worker left behind.

    A live worker never holds a claim or a "sending" mark this long: its claims are sized to
    what it may send in about one tick, and one sub-batch's calls end within the HTTP timeout.
    """
    # Core on the session's connection: its CursorResult has the rowcount (no ORM objects).
    connection = session.connection()
    replanned = connection.execute(
        update(Message)
        .where(Message.state == MessageState.CLAIMED, Message.claimed_at < now - timeout)
        .values(state=MessageState.PLANNED, claimed_by=None, claimed_at=None)
    ).rowcount
    uncertain = connection.execute(
        update(Message)
        .where(Message.state == MessageState.SENDING, Message.claimed_at < now - timeout)
        .values(
            state=MessageState.UNCERTAIN,
            error="worker stopped between the provider call and recording its outcome",
        )
    ).rowcount
    return replanned, uncertain


def release_worker(session: Session, worker: str) -> int:
    """On a clean shutdown, hand back what this worker claimed but never started sending."""
    return (
        session.connection()
        .execute(
            update(Message)
            .where(Message.state == MessageState.CLAIMED, Message.claimed_by == worker)
            .values(state=MessageState.PLANNED, claimed_by=None, claimed_at=None)
        )
        .rowcount
    )
