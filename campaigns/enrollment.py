"""Enrollment: putting audience contacts into a campaign, once each (a unique row per pair)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from campaigns.audience import audience_query
from campaigns.definitions import Sequence
from nurture.models import Campaign, Contact, Enrollment, EnrollmentState


def enroll_audience(
    session: Session, campaign: Campaign, *, at: datetime, limit: int | None = None
) -> int:
    """Enroll every audience contact not yet enrolled; returns how many were added."""
    sequence = Sequence.from_snapshot(campaign.definition)
    candidates = audience_query(sequence).where(
        ~exists().where(Enrollment.campaign_id == campaign.id, Enrollment.contact_id == Contact.id)
    )
    if limit is not None:
        candidates = candidates.limit(limit)
    contact_ids = list(session.scalars(candidates))
    session.add_all(
        Enrollment(campaign_id=campaign.id, contact_id=contact_id, enrolled_at=at)
        for contact_id in contact_ids
    )
    session.flush()
    return len(contact_ids)


def exit_enrollment(enrollment: Enrollment, reason: str, at: datetime) -> None:
    if enrollment.state == EnrollmentState.ACTIVE:
        enrollment.state = EnrollmentState.EXITED
        enrollment.exit_reason = reason
        enrollment.exited_at = at


def active_enrollments(session: Session, contact_id: int) -> list[Enrollment]:
    return list(
        session.scalars(
            select(Enrollment).where(
                Enrollment.contact_id == contact_id, Enrollment.state == EnrollmentState.ACTIVE
            )
        )
    )
