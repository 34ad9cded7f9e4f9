"""The planner: gives each active enrollment's next step a message row with its due time.

A step is due `delay` after the previous step settled (or after enrollment for the first), moved
into the step's send window and, for texts, the quiet hours in the contact's time zone. One row
per (enrollment, step), so planning twice is harmless: the unique key refuses a second row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from campaigns.definitions import Sequence
from campaigns.enrollment import enroll_audience
from core.clock import Clock, utcnow
from core.settings import Settings
from scheduler.exits import active_suppressions, exit_reason
from scheduler.windows import QuietHours, next_allowed
from storage.db import is_sqlite, transaction
from storage.models import (
    SETTLED_STATES,
    Campaign,
    CampaignState,
    Contact,
    Enrollment,
    EnrollmentState,
    Message,
    MessageState,
)


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
        after_id = 0  # keyset: each tick walks the enrollments once, never rescans a batch
        with self.sessions() as probe:
            sqlite = is_sqlite(probe.get_bind())  # type: ignore[arg-type]
        while True:
            found: list[int] | None = None
            if sqlite:
                # Found in a read transaction: walking a big campaign's enrollments for the few
                # that are ready takes a while, and the write lock is the web server's too.
                with transaction(self.sessions, immediate=False) as session:
                    found = [row.id for row in self._ready_enrollments(session, after_id)]
                if not found:
                    return result
            with transaction(self.sessions, immediate=True) as session:
                batch, after_id = self._plan_batch(session, now, result, after_id, found)
            if batch < self.settings.scheduler.batch_size:
                return result

    def _ready_enrollments(
        self, session: Session, after_id: int, among: list[int] | None = None
    ) -> list[Row[Any]]:
        """Active enrollments whose next step may be planned, as plain rows (locked on PostgreSQL
        so two workers never plan the same enrollment); `among` re-checks ones found earlier."""
        previous = Message.__table__.alias("previous")
        query = (
            select(
                Enrollment.id,
                Enrollment.campaign_id,
                Enrollment.contact_id,
                Enrollment.planned_step,
                Enrollment.enrolled_at,
            )
            .join(Campaign, Campaign.id == Enrollment.campaign_id)
            .outerjoin(
                previous,
                and_(
                    previous.c.enrollment_id == Enrollment.id,
                    previous.c.step_index == Enrollment.planned_step,
                ),
            )
            .where(
                Enrollment.id > after_id,
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
        if among is not None:
            query = query.where(Enrollment.id.in_(among))
        if not is_sqlite(session.get_bind()):  # type: ignore[arg-type]
            query = query.with_for_update(of=Enrollment, skip_locked=True)
        return list(session.execute(query))

    def _plan_batch(
        self,
        session: Session,
        now: datetime,
        result: PlanResult,
        after_id: int,
        found: list[int] | None = None,
    ) -> tuple[int, int]:
        """One batch of ready enrollments after `after_id` (or those `found` ready, checked again
        under the write lock), set-based: campaigns, contacts, suppressions and previous messages
        loaded once per batch; new messages inserted and enrollments updated in one statement
        each (no ORM object per enrollment). Returns the batch's size and where it ended."""
        ready = self._ready_enrollments(session, after_id, found)
        if found:
            size, end = len(found), found[-1]
        else:
            size, end = len(ready), ready[-1].id if ready else after_id
        if not ready:
            return size, end
        campaigns = {
            campaign.id: (campaign, Sequence.from_snapshot(campaign.definition))
            for campaign in session.scalars(
                select(Campaign).where(Campaign.id.in_({row.campaign_id for row in ready}))
            )
        }
        contacts = {
            contact.id: contact
            for contact in session.scalars(
                select(Contact).where(Contact.id.in_({row.contact_id for row in ready}))
            )
        }
        suppressed = active_suppressions(session, contacts.values())
        previous = self._previous_times(session, [row for row in ready if row.planned_step >= 0])
        messages: list[dict[str, Any]] = []
        planned: list[dict[str, Any]] = []
        ended: list[dict[str, Any]] = []
        for row in ready:
            campaign, sequence = campaigns[row.campaign_id]
            contact = contacts[row.contact_id]
            reason = exit_reason(contact, sequence, suppressed)
            if reason is not None:
                ended.append(
                    {"id": row.id, "state": EnrollmentState.EXITED, "exit_reason": reason,
                     "exited_at": now}
                )  # fmt: skip
                result.exited[reason] = result.exited.get(reason, 0) + 1
                continue
            next_index = row.planned_step + 1
            if next_index >= len(sequence.steps):
                ended.append(
                    {"id": row.id, "state": EnrollmentState.COMPLETED, "exit_reason": None,
                     "exited_at": None}
                )  # fmt: skip
                result.completed += 1
                continue
            base = previous.get(row.id) or self._first_base(row.enrolled_at, campaign)
            messages.append(self._plan_step(row, sequence, contact, next_index, base, now))
            planned.append({"id": row.id, "planned_step": next_index})
            result.planned += 1
        if messages:
            session.execute(insert(Message), messages)
            session.execute(update(Enrollment), planned)
        if ended:
            session.execute(update(Enrollment), ended)
        return size, end

    def _plan_step(
        self,
        enrollment: Row[Any],
        sequence: Sequence,
        contact: Contact,
        index: int,
        base: datetime,
        now: datetime,
    ) -> dict[str, Any]:
        """The message row for one step (skipped, with its reason, if its window never opens)."""
        step = sequence.steps[index]
        quiet = self.quiet if step.channel == "sms" else None
        due = next_allowed(base + step.delay, contact.timezone, step.window, quiet)
        return {
            "enrollment_id": enrollment.id,
            "campaign_id": enrollment.campaign_id,
            "contact_id": contact.id,
            "step_index": index,
            "channel": step.channel,
            "due_at": due or now,
            "state": MessageState.PLANNED if due is not None else MessageState.SKIPPED,
            "skip_reason": None if due is not None else "no allowed send time in the step's window",
            "not_after": None
            if due is None
            else due + (step.max_lateness or self.default_lateness),
        }

    @staticmethod
    def _first_base(enrolled_at: datetime, campaign: Campaign) -> datetime:
        return max(enrolled_at, campaign.starts_at or enrolled_at)

    @staticmethod
    def _previous_times(session: Session, enrollments: list[Row[Any]]) -> dict[int, datetime]:
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
