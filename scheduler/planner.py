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
from scheduler.exits import active_suppressions, exit_reason
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
        """One batch of ready enrollments, with their contacts, suppressions and previous
        messages loaded in bulk (one query each, not one per enrollment)."""
        ready = self._ready_enrollments(session)
        if not ready:
            return 0
        contacts = {
            contact.id: contact
            for contact in session.scalars(
                select(Contact).where(Contact.id.in_({e.contact_id for e, _ in ready}))
            )
        }
        suppressed = active_suppressions(session, contacts.values())
        previous = self._previous_times(session, [e for e, _ in ready if e.planned_step >= 0])
        sequences: dict[int, Sequence] = {}
        messages: list[Message] = []
        with session.no_autoflush:
            for enrollment, campaign in ready:
                sequence = sequences.setdefault(
                    campaign.id, Sequence.from_snapshot(campaign.definition)
                )
                contact = contacts[enrollment.contact_id]
                reason = exit_reason(contact, sequence, suppressed)
                if reason is not None:
                    exit_enrollment(enrollment, reason, now)
                    result.exited[reason] = result.exited.get(reason, 0) + 1
                    continue
                next_index = enrollment.planned_step + 1
                if next_index >= len(sequence.steps):
                    enrollment.state = EnrollmentState.COMPLETED
                    result.completed += 1
                    continue
                base = previous.get(enrollment.id) or self._first_base(enrollment, campaign)
                messages.append(
                    self._plan_step(enrollment, campaign, sequence, contact, next_index, base, now)
                )
                result.planned += 1
        session.add_all(messages)
        session.flush()
        return len(ready)

    def _plan_step(
        self,
        enrollment: Enrollment,
        campaign: Campaign,
        sequence: Sequence,
        contact: Contact,
        index: int,
        base: datetime,
        now: datetime,
    ) -> Message:
        step = sequence.steps[index]
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
        enrollment.planned_step = index
        return message

    @staticmethod
    def _first_base(enrollment: Enrollment, campaign: Campaign) -> datetime:
        return max(enrollment.enrolled_at, campaign.starts_at or enrollment.enrolled_at)

    @staticmethod
    def _previous_times(session: Session, enrollments: list[Enrollment]) -> dict[int, datetime]:
        """When each enrollment's previous step settled: the next delay counts from it."""
        if not enrollments:
            return {}
        wanted = {enrollment.id: enrollment.planned_step for enrollment in enrollments}
        rows = session.execute(
            select(
                Message.enrollment_id, Message.step_index, Message.sent_at, Message.updated_at
            ).where(Message.enrollment_id.in_(wanted))
        )
        return {
            enrollment_id: sent_at or updated_at
            for enrollment_id, step_index, sent_at, updated_at in rows
            if wanted[enrollment_id] == step_index
        }
