"""Writing what happened, in bulk: verdicts before the send, provider outcomes after it.

Every statement is guarded by the state it expects and by the worker that holds the claim, so a
message another worker recovered or re-claimed is never overwritten. Rows with the same kind of
outcome are written with one executemany, which is what keeps recording off the hot path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, or_, update
from sqlalchemy.orm import Session

from contacts.suppressions import suppress
from core.settings import SchedulerSettings
from providers.base import (
    ProviderRejected,
    ProviderUnavailable,
    ProviderUncertain,
    SendResult,
)
from scheduler.checks import Action, Verdict
from scheduler.claims import unindexed
from scheduler.retry import backoff
from scheduler.sending import Outcome, Outgoing
from storage.models import (
    IN_SEQUENCE,
    Enrollment,
    EnrollmentState,
    Message,
    MessageState,
    SuppressionReason,
)
from storage.sql_lists import among

HELD = (MessageState.CLAIMED,)
IN_FLIGHT = (MessageState.SENDING, MessageState.UNCERTAIN)


@dataclass
class Tally:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    deferred: int = 0
    retried: int = 0
    released: int = 0
    uncertain: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str, reason: str | None = None, n: int = 1) -> None:
        setattr(self, outcome, getattr(self, outcome) + n)
        if reason:
            self.reasons[reason] = self.reasons.get(reason, 0) + n

    def add(self, other: Tally) -> None:
        for name in ("claimed", "sent", "failed", "skipped", "deferred", "retried", "released"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.uncertain += other.uncertain
        for reason, n in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + n


def _guarded(states: Iterable[str], worker: str) -> Any:
    return (
        update(Message)
        .where(
            Message.id == bindparam("b_id"),
            # executemany cannot expand IN lists, so the expected states are spelled out
            or_(*(Message.state == str(state) for state in states)),
            Message.claimed_by == worker,
        )
        .execution_options(synchronize_session=False)
    )


def _many(session: Session, statement: Any, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.connection().execute(statement, rows)


#: The hot path, one row per accepted message: plain DB-API executemany, because SQLAlchemy's
#: per-row parameter processing cost about 100 µs a row against SQLite's 30 µs of real work.
#: Guarded like every other write: the worker holding the claim. A status callback can beat this
#: record (providers/events.py: states only move forward), so a message already delivered,
#: undelivered or failed keeps that state and gains only the send's own facts.
RECORD_SENT = (
    "UPDATE messages SET "
    "state = CASE WHEN state IN ('sending', 'uncertain') THEN 'sent' ELSE state END, "
    "sent_at = COALESCE(sent_at, {p}), provider = {p}, provider_message_id = {p}, "
    "provider_status = CASE WHEN state IN ('sending', 'uncertain') THEN {p} "
    "ELSE provider_status END, segments = {p}, "
    "error = CASE WHEN state IN ('sending', 'uncertain') THEN NULL ELSE error END, "
    "updated_at = {p} "
    "WHERE id = {p} AND claimed_by = {p} "
    "AND state IN ('sending', 'uncertain', 'delivered', 'undelivered', 'failed')"
)


def _record_sent(session: Session, rows: list[tuple[Any, ...]], now: datetime) -> None:
    if not rows:
        return
    connection = session.connection()
    sqlite = connection.dialect.name == "sqlite"
    # Stored as naive UTC, exactly as storage.models.UTCDateTime and SQLite's DATETIME write it.
    naive = now.astimezone(UTC).replace(tzinfo=None)
    stamp: Any = naive.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else naive
    sql = RECORD_SENT.format(p="?" if sqlite else "%s")
    connection.exec_driver_sql(
        sql,
        [
            (stamp, provider, pid, status, segments, stamp, mid, worker)
            for (mid, provider, pid, status, segments, worker) in rows
        ],
    )


def apply_verdicts(
    session: Session,
    verdicts: list[tuple[int, int, Verdict]],
    *,
    now: datetime,
    worker: str,
    tally: Tally,
) -> None:
    """(message id, enrollment id, verdict) for every message that will not be sent now."""
    by: dict[Action, list[dict[str, Any]]] = {action: [] for action in Action}
    exits: list[dict[str, Any]] = []
    for message_id, enrollment_id, verdict in verdicts:
        row: dict[str, Any] = {"b_id": message_id, "b_reason": verdict.reason, "b_now": now}
        if verdict.action == Action.EXIT:
            row["b_reason"] = f"exited: {verdict.reason}"
            exits.append({"b_enrollment": enrollment_id, "b_why": verdict.reason, "b_now": now})
            by[Action.SKIP].append(row)
            tally.count("skipped", row["b_reason"])
            continue
        if verdict.action == Action.DEFER:
            row["b_until"] = verdict.until
        by[verdict.action].append(row)
        outcome = {
            Action.RELEASE: "released",
            Action.SKIP: "skipped",
            Action.DEFER: "deferred",
            Action.FAIL: "failed",
        }[verdict.action]
        tally.count(outcome, verdict.reason if outcome in ("skipped", "failed") else None)
    guarded = _guarded(HELD, worker)
    unclaimed: dict[str, Any] = {
        "claimed_by": None,
        "claimed_at": None,
        "updated_at": bindparam("b_now"),
    }
    _many(session, guarded.values(state=MessageState.PLANNED, **unclaimed), by[Action.RELEASE])
    _many(
        session,
        guarded.values(state=MessageState.PLANNED, due_at=bindparam("b_until"), **unclaimed),
        by[Action.DEFER],
    )
    _many(
        session,
        guarded.values(
            state=MessageState.SKIPPED,
            skip_reason=bindparam("b_reason"),
            updated_at=bindparam("b_now"),
        ),
        by[Action.SKIP],
    )
    _many(
        session,
        guarded.values(
            state=MessageState.FAILED, error=bindparam("b_reason"), updated_at=bindparam("b_now")
        ),
        by[Action.FAIL],
    )
    _many(
        session,
        update(Enrollment)
        .where(
            Enrollment.id == bindparam("b_enrollment"),
            Enrollment.state.in_([str(state) for state in IN_SEQUENCE]),
        )
        .values(
            state=EnrollmentState.EXITED,
            exit_reason=bindparam("b_why"),
            exited_at=bindparam("b_now"),
        )
        .execution_options(synchronize_session=False),
        exits,
    )


def mark_sending(session: Session, ids: list[int], *, now: datetime, worker: str) -> set[int]:
    """The commit point before the provider call; returns the ids this worker still held."""
    if not ids:
        return set()
    # Core, on the session's connection: the ORM's bulk-update path cost more than the UPDATE.
    connection = session.connection()
    statement = (
        update(Message)
        .where(
            among(Message.id, ids, connection.dialect.name),
            unindexed(Message.state) == MessageState.CLAIMED,
            Message.claimed_by == worker,
        )
        .values(
            state=MessageState.SENDING,
            attempts=Message.attempts + 1,
            claimed_at=now,
            updated_at=now,
        )
        .returning(Message.id)
    )
    return set(connection.scalars(statement))


def record_outcomes(
    session: Session,
    sent: list[tuple[Outgoing, Outcome]],
    *,
    now: datetime,
    worker: str,
    settings: SchedulerSettings,
    tally: Tally,
) -> None:
    ok: list[tuple[Any, ...]] = []
    failed: list[dict[str, Any]] = []
    retry: list[dict[str, Any]] = []
    unsure: list[dict[str, Any]] = []
    for item, outcome in sent:
        base: dict[str, Any] = {"b_id": item.message_id, "b_now": now}
        segments = getattr(item.payload, "segments", None) if item.channel == "sms" else None
        if isinstance(outcome, SendResult):
            ok.append(
                (
                    item.message_id,
                    outcome.provider,
                    outcome.provider_message_id,
                    outcome.status,
                    segments,
                    worker,
                )
            )
            tally.count("sent")
        elif isinstance(outcome, ProviderRejected):
            failed.append({**base, "b_provider": outcome.provider, "b_error": str(outcome)})
            tally.count("failed", outcome.reason)
            if outcome.suppress:
                suppress(
                    session,
                    item.channel,
                    item.payload.to,
                    SuppressionReason.STOP,
                    source=f"{outcome.provider} error {outcome.code}",
                    at=now,
                )
        elif isinstance(outcome, ProviderUnavailable) and item.attempts < settings.max_attempts:
            delay = backoff(item.attempts, settings.retry_base_seconds)
            if outcome.retry_after:
                delay = max(delay, timedelta(seconds=outcome.retry_after))
            retry.append({**base, "b_error": str(outcome), "b_until": now + delay})
            tally.count("retried")
        elif isinstance(outcome, ProviderUnavailable):
            error = f"gave up after {item.attempts} attempts: {outcome}"
            failed.append({**base, "b_provider": outcome.provider, "b_error": error})
            tally.count("failed", "provider unavailable")
        else:
            assert isinstance(outcome, ProviderUncertain)
            unsure.append({**base, "b_error": str(outcome)})
            tally.count("uncertain", "no answer from the provider")
    _record_sent(session, ok, now)
    guarded = _guarded(IN_FLIGHT, worker)
    _many(
        session,
        guarded.values(
            state=MessageState.FAILED,
            provider=bindparam("b_provider"),
            error=bindparam("b_error"),
            updated_at=bindparam("b_now"),
        ),
        failed,
    )
    _many(
        session,
        guarded.values(
            state=MessageState.PLANNED,
            due_at=bindparam("b_until"),
            error=bindparam("b_error"),
            claimed_by=None,
            claimed_at=None,
            updated_at=bindparam("b_now"),
        ),
        retry,
    )
    _many(
        session,
        guarded.values(
            state=MessageState.UNCERTAIN, error=bindparam("b_error"), updated_at=bindparam("b_now")
        ),
        unsure,
    )
