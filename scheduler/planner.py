"""The planner: gives each active enrollment's next step a message row with its due time.

A step is due `delay` after the previous step settled (or after enrollment for the first), moved
into the step's send window and, for texts, the quiet hours in the contact's time zone. One row
per (enrollment, step), so planning twice is harmless: the unique key refuses a second row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from campaigns.definitions import Sequence
from campaigns.enrollment import enroll_audience, exit_enrollment
from nurture.clock import Clock, utcnow
from nurture.db import is_sqlite, transaction
from nurture.models import (
    SETTLED_STATES,
    Campaign,
    CampaignState,
    Contact,
    Enrollment,
    EnrollmentState,
    Message,
    MessageState,
)
from nurture.settings import Settings
from scheduler.exits import exit_reason
from scheduler.windows import QuietHours, next_allowed


@dataclass
class PlanResult:
    enrolled: int = 0
    planned: int = 0
    completed: int = 0
    exited: dict[str, int] = field(default_factory=dict)


def quiet_hours(settings: Settings) -> QuietHours:
    return QuietHours(
        allowed_from=settings.scheduler.sms_quiet_hours_end,
        allowed_until=settings.scheduler.sms_quiet_hours_start,
    )


class Planner:
    def __init__(
        self, settings: Settings, sessions: sessionmaker[Session], clock: Clock = utcnow
    ) -> None:
        self.settings, self.sessions, self.clock = settings, sessions, clock
        self.quiet = quiet_hours(settings)
        self.default_lateness = timedelta(hours=settings.scheduler.max_lateness_hours)

    def tick(self) -> PlanResult:
        result = PlanResult()
        now = self.clock()
        with transaction(self.sessions, immediate=True) as session:
            for campaign in session.scalars(
                select(Campaign).where(Campaign.state == CampaignState.ACTIVE)
            ):
                sequence = Sequence.from_snapshot(campaign.definition)
                if sequence.audience.enroll_new_contacts and campaign.starts_at:
                    at = max(now, campaign.starts_at)
                    result.enrolled += enroll_audience(
                        session, campaign, at=at, limit=self.settings.scheduler.batch_size
                    )
        while True:
            with transaction(self.sessions, immediate=True) as session:
                batch = self._plan_batch(session, now, result)
            if batch < self.settings.scheduler.batch_size:
                return result

    def _ready_enrollments(self, session: Session) -> list[tuple[Enrollment, Campaign]]:
        previous = Message.__table__.alias("previous")
        query = (
            select(Enrollment, Campaign)
            .join(Campaign, Campaign.id == Enrollment.campaign_id)
            .outerjoin(
                previous,
                and_(
                    previous.c.enrollment_id == Enrollment.id,
                    previous.c.step_index == Enrollment.planned_step,
                ),
            )
            .where(
                Enrollment.state == EnrollmentState.ACTIVE,
                Campaign.state == CampaignState.ACTIVE,
                or_(
                    Enrollment.planned_step == -1,
                    previous.c.state.in_([str(state) for state in SETTLED_STATES]),
                ),
            )
            .order_by(Enrollment.id)
            .limit(self.settings.scheduler.batch_size)
        )
        if not is_sqlite(session.get_bind()):  # type: ignore[arg-type]
            query = query.with_for_update(of=Enrollment, skip_locked=True)
        return [(row[0], row[1]) for row in session.execute(query)]

    def _plan_batch(self, session: Session, now: datetime, result: PlanResult) -> int:
        ready = self._ready_enrollments(session)
        sequences: dict[int, Sequence] = {}
        for enrollment, campaign in ready:
            sequence = sequences.setdefault(
                campaign.id, Sequence.from_snapshot(campaign.definition)
            )
            contact = session.get_one(Contact, enrollment.contact_id)
            reason = exit_reason(session, contact, sequence)
            if reason is not None:
                exit_enrollment(enrollment, reason, now)
                result.exited[reason] = result.exited.get(reason, 0) + 1
                continue
            next_index = enrollment.planned_step + 1
            if next_index >= len(sequence.steps):
                enrollment.state = EnrollmentState.COMPLETED
                result.completed += 1
                continue
            self._plan_step(session, enrollment, campaign, sequence, contact, next_index, now)
            result.planned += 1
        session.flush()
        return len(ready)

    def _plan_step(
        self,
        session: Session,
        enrollment: Enrollment,
        campaign: Campaign,
        sequence: Sequence,
        contact: Contact,
        index: int,
        now: datetime,
    ) -> None:
        step = sequence.steps[index]
        base = self._base_time(session, enrollment, campaign)
        quiet = self.quiet if step.channel == "sms" else None
        due = next_allowed(base + step.delay, contact.timezone, step.window, quiet)
        message = Message(
            enrollment_id=enrollment.id,
            campaign_id=campaign.id,
            contact_id=contact.id,
            step_index=index,
            channel=step.channel,
            due_at=due or now,
        )
        if due is None:
            message.state = MessageState.SKIPPED
            message.skip_reason = "no allowed send time in the step's window"
        else:
            message.not_after = due + (step.max_lateness or self.default_lateness)
        session.add(message)
        enrollment.planned_step = index

    def _base_time(self, session: Session, enrollment: Enrollment, campaign: Campaign) -> datetime:
        if enrollment.planned_step < 0:
            return max(enrollment.enrolled_at, campaign.starts_at or enrollment.enrolled_at)
        previous = session.scalar(
            select(Message).where(
                Message.enrollment_id == enrollment.id,
                Message.step_index == enrollment.planned_step,
            )
        )
        assert previous is not None  # the ready query joined it
        return previous.sent_at or previous.updated_at
