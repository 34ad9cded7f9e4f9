"""Steps due before the booked visit: `before_appointment = "1d"` on a step of a sequence a
booking starts (the visit's time comes with the booking and is kept on the enrollment,
campaigns.triggers).

The planner asks `Appointments.counting_from` for the instant a step's delay counts from: for such
a step with a known visit, the instant that makes it due `before_appointment` before the visit;
otherwise the usual one (the previous step's settle, or the enrollment). The due time then goes
through the same window and quiet-hour rules as any step (scheduler.windows), in the contact's
zone. A reminder whose time has already passed goes out late only within the step's
`max_lateness` (the dispatcher skips it after that), so a booking made the evening before still
gets its reminder and one made an hour before does not. One query per planner batch, and none
for a batch whose sequences have no such step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.definitions import Sequence, Step
from storage.models import Enrollment
from storage.sql_lists import among


class _Planned(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def campaign_id(self) -> int: ...


@dataclass(frozen=True)
class Appointments:
    """The visits' times of a planner batch's enrollments, by enrollment id."""

    visits: dict[int, datetime] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        session: Session,
        ready: Iterable[_Planned],
        known: Mapping[int, tuple[Sequence, Any]],
    ) -> Appointments:
        ids = [
            row.id
            for row in ready
            if any(step.before_appointment for step in known[row.campaign_id][0].steps)
        ]
        if not ids:
            return cls()
        dialect = session.get_bind().dialect.name
        rows = session.execute(
            select(Enrollment.id, Enrollment.appointment_at).where(
                among(Enrollment.id, ids, dialect), Enrollment.appointment_at.is_not(None)
            )
        )
        return cls({row.id: row.appointment_at for row in rows})

    def counting_from(self, enrollment_id: int, step: Step, usual: datetime) -> datetime:
        """Where `step`'s delay counts from: so that it is due `before_appointment` before the
        visit when the step says so and the visit's time is known; else `usual`."""
        visit = self.visits.get(enrollment_id)
        if step.before_appointment is None or visit is None:
            return usual
        return visit - step.before_appointment - step.delay
