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

Such a reminder is never due, nor sent, at or after the visit (`at_visits`): its `not_after`
(the dispatcher's last moment to send it) is capped just before the visit, and one the window
pushes to the visit or past it (a Monday-to-Friday window and a Monday 09:00 visit: "the day
before" lands on Monday 10:00) is skipped as "visit passed". A "see you tomorrow" text after
the visit would be wrong, not merely late.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.definitions import Sequence, Step
from storage.models import Enrollment, MessageState
from storage.sql_lists import among

VISIT_PASSED = "visit passed"
#: A planned message as scheduler.planner writes it (its _MESSAGE_COLUMNS), the same for every
#: enrollment due at once.
MESSAGE_LAYOUT = ("step_index", "channel", "due_at", "state", "skip_reason", "not_after")
#: `not_after` is inclusive (the dispatcher skips when now > not_after), so the last moment a
#: reminder may go is the one just before the visit.
_JUST_BEFORE = timedelta(microseconds=1)


class _Planned(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def campaign_id(self) -> int: ...


R = TypeVar("R", bound=_Planned)


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

    def at_visits(
        self,
        messages: dict[tuple[Any, ...], list[R]],
        known: Mapping[int, tuple[Sequence, Any]],
        now: datetime,
    ) -> dict[tuple[Any, ...], list[R]]:
        """The batch's messages (MESSAGE_LAYOUT -> enrollments) with every step timed before
        a known visit kept before it (module docstring): `not_after` capped just before the
        visit, or, when due at the visit or later, skipped as VISIT_PASSED, due `now` (a
        skipped row is never in the future: campaigns.reports.upcoming, and its time would
        tell the visit's). Unchanged (the same dict) when the batch has no visit."""
        if not self.visits:
            return messages
        out: dict[tuple[Any, ...], list[R]] = {}
        for message, rows in messages.items():
            index, channel, due, state, reason, not_after = message
            for row in rows:
                visit = self.visits.get(row.id)
                step = known[row.campaign_id][0].steps[index]
                mine = message
                if visit is not None and step.before_appointment is not None:
                    if state != MessageState.PLANNED:
                        pass  # skipped already (no window): stays as it is
                    elif due >= visit:
                        mine = (index, channel, now, str(MessageState.SKIPPED), VISIT_PASSED, None)
                    elif not_after is None or not_after >= visit:
                        mine = (index, channel, due, state, reason, visit - _JUST_BEFORE)
                out.setdefault(mine, []).append(row)
        return out
