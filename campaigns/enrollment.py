"""Enrollment: putting audience contacts into a campaign, once each (a unique row per pair)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Select, exists, func, insert, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from campaigns.audience import audience_query
from campaigns.definitions import Sequence
from storage.models import IN_SEQUENCE, Campaign, Contact, Enrollment, EnrollmentState

ENROLL_CHUNK = 50_000  # contact ids per INSERT ... SELECT: a progress step, bounded statements


def enroll_audience(
    session: Session,
    campaign: Campaign,
    *,
    at: datetime,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Enroll every audience contact not yet enrolled; returns how many were added.

    Set-based (INSERT ... SELECT in windows of contact ids), so a million-contact audience needs
    neither a million ORM objects in memory nor a million round trips; `progress(done, total)`
    follows the windows. Enrolling twice adds no one (the NOT EXISTS, and a unique pair).
    """
    sequence = Sequence.from_snapshot(campaign.definition)
    if sequence.trigger != "launch":
        return 0  # a booking event enrolls its contacts one at a time (campaigns.triggers)
    candidates = audience_query(sequence).where(
        ~exists().where(Enrollment.campaign_id == campaign.id, Enrollment.contact_id == Contact.id)
    )
    if limit is not None:
        return _insert(session, campaign, candidates.order_by(Contact.id).limit(limit), at)
    first, last = session.execute(select(func.min(Contact.id), func.max(Contact.id))).one()
    if first is None:
        return 0
    added, total = 0, last - first + 1
    for low in range(first, last + 1, ENROLL_CHUNK):
        window = candidates.where(Contact.id >= low, Contact.id < low + ENROLL_CHUNK)
        added += _insert(session, campaign, window, at)
        if progress:
            progress(min(low + ENROLL_CHUNK - first, total), total)
    return added


def enroll_contact(
    session: Session,
    campaign: Campaign,
    contact_id: int,
    *,
    at: datetime,
    again_after: timedelta | None = None,
    appointment_at: datetime | None = None,
) -> bool:
    """Enroll one contact who asked for this sequence themselves (text-to-join) or whom an event
    brought (campaigns.triggers), whatever the audience rule says; False when already enrolled.

    With `again_after` a contact whose last entry ended may enter again that long after it began
    (a new row, the next `entry`, with messages of its own). The same row as `enroll_audience`'s:
    the planner plans the first step, and the dispatcher checks each step's consent at send time.
    Two requests racing for one entry meet at the unique key: one row, the other answers False.
    """
    last = session.execute(
        select(Enrollment.entry, Enrollment.enrolled_at, Enrollment.state)
        .where(Enrollment.campaign_id == campaign.id, Enrollment.contact_id == contact_id)
        .order_by(Enrollment.entry.desc())
        .limit(1)
    ).first()
    if last is not None and (
        again_after is None
        or last.state in [str(state) for state in IN_SEQUENCE]
        or at < last.enrolled_at + again_after
    ):
        return False
    enrollment = Enrollment(
        campaign_id=campaign.id,
        contact_id=contact_id,
        enrolled_at=at,
        state=EnrollmentState.ACTIVE,
        planned_step=-1,
        entry=0 if last is None else last.entry + 1,
        appointment_at=appointment_at,
    )
    try:
        with session.begin_nested():
            session.add(enrollment)
    except IntegrityError:
        return False
    return True


def _insert(session: Session, campaign: Campaign, candidates: Select[int], at: datetime) -> int:
    ids = candidates.subquery()
    rows = select(
        literal(campaign.id),
        ids.c.id,
        literal(at, Enrollment.enrolled_at.type),
        literal(EnrollmentState.ACTIVE.value, Enrollment.state.type),
        literal(-1),
    )
    statement = insert(Enrollment).from_select(
        ["campaign_id", "contact_id", "enrolled_at", "state", "planned_step"], rows
    )
    # INSERT ... SELECT keeps the driver's row count only when asked to.
    result = session.connection().execute(statement.execution_options(preserve_rowcount=True))
    return result.rowcount


def exit_enrollment(enrollment: Enrollment, reason: str, at: datetime) -> None:
    if enrollment.state in IN_SEQUENCE:
        enrollment.state = EnrollmentState.EXITED
        enrollment.exit_reason = reason
        enrollment.exited_at = at


def active_enrollments(session: Session, contact_id: int) -> list[Enrollment]:
    """The contact's enrollments still in their sequence, paused ones included."""
    return list(
        session.scalars(
            select(Enrollment).where(
                Enrollment.contact_id == contact_id,
                Enrollment.state.in_([str(state) for state in IN_SEQUENCE]),
            )
        )
    )
