"""A person's text reply puts their sequence on hold until staff answer it.

A reply that is not a keyword (contacts.keywords: intent OTHER) is often a question ("can I
come Saturday?"); sending the next scheduled text over it reads as a machine ignoring them. So,
where the sequence says so (`pause_on_reply`, on by default), each of the contact's active
enrollments becomes paused: the planner plans nothing for it (it moves active ones only) and
the dispatcher defers its due message (scheduler.checks.verdict). Staff resume it (active
again: the next step goes) or end it (exited) from the inbox, one click each, recorded as
events naming who did it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from campaigns.definitions import Sequence
from core.errors import InputError, NotFound
from storage.models import Campaign, Enrollment, EnrollmentState, Event

ENDED_BY_STAFF = "ended by staff after a reply"


@dataclass(frozen=True)
class EnrollmentView:
    """A contact's enrollment as the inbox shows it."""

    id: int
    campaign: str
    state: str
    exit_reason: str | None


def pause_for_reply(session: Session, contact_id: int, *, at: datetime) -> list[int]:
    """Pause the contact's active enrollments whose sequence pauses on a reply; their ids."""
    found = session.execute(
        select(Enrollment.id, Campaign.definition)
        .join(Campaign, Campaign.id == Enrollment.campaign_id)
        .where(Enrollment.contact_id == contact_id, Enrollment.state == EnrollmentState.ACTIVE)
    ).all()
    wanted = [row.id for row in found if Sequence.from_snapshot(row.definition).pause_on_reply]
    paused: list[int] = []
    if wanted:
        # Guarded on the state: a planner that exited or completed it meanwhile wins.
        paused = list(
            session.scalars(
                update(Enrollment)
                .where(Enrollment.id.in_(wanted), Enrollment.state == EnrollmentState.ACTIVE)
                .values(state=EnrollmentState.PAUSED)
                .returning(Enrollment.id)
                .execution_options(synchronize_session="fetch")
            )
        )
    if paused:
        session.add(
            Event(
                kind="enrollment_paused",
                occurred_at=at,
                contact_id=contact_id,
                data={"enrollments": paused, "by": "reply"},
            )
        )
        session.flush()
    return paused


def resume(session: Session, enrollment_id: int, *, by: str, at: datetime) -> None:
    """Paused -> active: the planner and dispatcher take it up at their next tick."""
    enrollment = _paused(session, enrollment_id)
    enrollment.state = EnrollmentState.ACTIVE
    _record(session, enrollment, "enrollment_resumed", by, at)


def end(session: Session, enrollment_id: int, *, by: str, at: datetime) -> None:
    """Paused -> exited: nothing more of this sequence goes to the contact."""
    enrollment = _paused(session, enrollment_id)
    enrollment.state = EnrollmentState.EXITED
    enrollment.exit_reason = ENDED_BY_STAFF
    enrollment.exited_at = at
    _record(session, enrollment, "enrollment_ended", by, at)


def enrollments_of(session: Session, contact_ids: set[int]) -> dict[int, list[EnrollmentView]]:
    """Each contact's enrollments, newest first, with the campaign's name."""
    if not contact_ids:
        return {}
    views: dict[int, list[EnrollmentView]] = {}
    for enrollment, name in session.execute(
        select(Enrollment, Campaign.name)
        .join(Campaign, Campaign.id == Enrollment.campaign_id)
        .where(Enrollment.contact_id.in_(contact_ids))
        .order_by(Enrollment.id.desc())
    ):
        views.setdefault(enrollment.contact_id, []).append(
            EnrollmentView(enrollment.id, name, enrollment.state, enrollment.exit_reason)
        )
    return views


def _paused(session: Session, enrollment_id: int) -> Enrollment:
    enrollment = session.get(Enrollment, enrollment_id, with_for_update=True)
    if enrollment is None:
        raise NotFound(f"no enrollment {enrollment_id}")
    if enrollment.state != EnrollmentState.PAUSED:
        raise InputError(f"enrollment {enrollment_id} is {enrollment.state}, not paused")
    return enrollment


def _record(session: Session, enrollment: Enrollment, kind: str, by: str, at: datetime) -> None:
    session.add(
        Event(
            kind=kind,
            occurred_at=at,
            contact_id=enrollment.contact_id,
            campaign_id=enrollment.campaign_id,
            data={"enrollment": enrollment.id, "by": by},
        )
    )
    session.flush()
