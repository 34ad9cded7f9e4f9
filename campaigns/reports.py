"""Campaign reports: the funnel per step, a daily series, CSV export, and the list counts.

Every figure is an aggregate over an index that starts with the campaign id (see the report
indexes in storage.models), so a page view reads the index entries of one campaign and never
scans a table (figures for 1,000,000 contacts: bench/reports_speed.py).

Vocabulary: a message is *sent* once the provider accepted it (sent, delivered or undelivered),
*delivered* when the provider confirmed delivery, *bounced* when it came back undelivered.
Clicks are events (distinct messages clicked). Unsubscribes and bookings are events credited to
the message that caused them (contacts.credit, campaigns.booking): counted on that campaign and
step, as people. The exit reasons say why people left, whatever the message.

A sequence with branches (campaigns.paths) gets a row per way out of each branching step
(`branches`): the people who took it, from the paths enrollments record (Enrollment.path: one
GROUP BY over a partial index), each over the people decided at that step.

The funnel's stages (`stages`) count people, each over the people enrolled: a contact sent five
messages is one person sent, so no stage exceeds the enrolled. A person who entered a sequence
twice (a booking-started one, `reenter_after`: enrollments.entry) is one person enrolled with two
`entries`; `active`, `completed` and `exited` say what became of each entry. Message totals (`sent`,
`delivered`, ...) are messages and carry no percentage.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, SQLColumnExpression, case, func, select
from sqlalchemy.orm import Session

from campaigns.definitions import Sequence
from campaigns.paths import describe
from core.csv_safety import csv_writer
from storage.models import (
    IN_SEQUENCE,
    Campaign,
    Enrollment,
    EnrollmentState,
    Event,
    Message,
    MessageState,
)

SENT_STATES = (MessageState.SENT, MessageState.DELIVERED, MessageState.UNDELIVERED)
PENDING_STATES = (MessageState.PLANNED, MessageState.CLAIMED, MessageState.SENDING)
FUNNEL_STAGES = ("enrolled", "sent", "delivered", "clicked", "booked")
SIDE_COUNTS = ("unsubscribed", "bounced", "failed")
CREDITED_KINDS = ("booked", "unsubscribed")  # events credited to a message's campaign and step


@dataclass
class StepFunnel:
    """One step's figures (message level: one row per contact who reached the step)."""

    step_index: int
    name: str
    channel: str
    reached: int = 0
    pending: int = 0
    sent: int = 0
    delivered: int = 0
    clicked: int = 0
    booked: int = 0
    unsubscribed: int = 0
    bounced: int = 0
    failed: int = 0
    skipped: int = 0
    uncertain: int = 0


@dataclass
class BranchFunnel:
    """One way out of a branching step: the people who took it."""

    step: str  # the branching step's name
    event: str  # "clicked", "replied" or "otherwise"
    target: str  # the step it leads to, or "end"
    label: str  # what it means: "clicked the booking link within 2d", "did not click ..."
    people: int = 0
    decided: int = 0  # people decided at this step, every way together

    @property
    def share(self) -> float | None:
        """Of the people decided at the step: the ways of one step add up to 100%."""
        return people_share(self.people, self.decided)


@dataclass
class CampaignFunnel:
    """The campaign's funnel (enrolled contacts down to bookings) and its steps."""

    campaign_id: int
    name: str
    enrolled: int = 0  # people (distinct contacts)
    entries: int = 0  # enrollments: above `enrolled` when people entered again
    active: int = 0
    completed: int = 0
    exited: int = 0
    exit_reasons: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    delivered: int = 0
    clicked: int = 0
    booked: int = 0
    unsubscribed: int = 0
    bounced: int = 0
    failed: int = 0
    skipped: int = 0
    uncertain: int = 0
    pending: int = 0
    steps: list[StepFunnel] = field(default_factory=list)
    #: People (distinct contacts) at each of FUNNEL_STAGES: what `stages` shows.
    people: dict[str, int] = field(default_factory=dict)
    #: Each way out of each branching step, in the file's order (empty without branches).
    branches: list[BranchFunnel] = field(default_factory=list)

    def stages(self) -> list[tuple[str, int]]:
        """The funnel in people, each stage at most the people enrolled."""
        return [(stage, self.people.get(stage, 0)) for stage in FUNNEL_STAGES]

    def share(self, stage: str) -> float | None:
        """A stage's people over the people enrolled (None before anyone is enrolled)."""
        return people_share(self.people.get(stage, 0), self.enrolled)


def people_share(people: int, enrolled: int) -> float | None:
    """People at a stage over people enrolled. Both count contacts, so above 1 is a bug in the
    counting, never a figure to show: it is capped rather than printed as 167%."""
    return min(people / enrolled, 1.0) if enrolled else None


def _steps_of(campaign: Campaign) -> list[StepFunnel]:
    try:
        sequence = Sequence.from_snapshot(campaign.definition)
    except ValueError:
        return []
    return [StepFunnel(index, step.name, step.channel) for index, step in enumerate(sequence.steps)]


def _step(steps: list[StepFunnel], index: int) -> StepFunnel:
    while len(steps) <= index:  # a row for a step the snapshot no longer names
        steps.append(StepFunnel(len(steps), f"step-{len(steps) + 1}", "?"))
    return steps[index]


def campaign_funnel(session: Session, campaign: Campaign) -> CampaignFunnel:
    """Three grouped index reads: enrollments, messages by step and state, events by step."""
    funnel = CampaignFunnel(campaign.id, campaign.name, steps=_steps_of(campaign))
    for state, reason, count in session.execute(
        select(Enrollment.state, Enrollment.exit_reason, func.count())
        .where(Enrollment.campaign_id == campaign.id)
        .group_by(Enrollment.state, Enrollment.exit_reason)
    ):
        funnel.entries += count
        if state in IN_SEQUENCE:  # paused for a person's answer: still in progress
            funnel.active += count
        elif state == EnrollmentState.COMPLETED:
            funnel.completed += count
        else:
            funnel.exited += count
            key = reason or "unknown"
            funnel.exit_reasons[key] = funnel.exit_reasons.get(key, 0) + count
    for index, state, count in session.execute(
        select(Message.step_index, Message.state, func.count())
        .where(Message.campaign_id == campaign.id)
        .group_by(Message.step_index, Message.state)
    ):
        _add_message_state(_step(funnel.steps, index), state, count)
    for step_index, clicks in session.execute(
        select(Event.step_index, func.count(func.distinct(Event.message_id)))
        .where(
            Event.campaign_id == campaign.id,
            Event.kind == "clicked",
            Event.step_index.is_not(None),
        )
        .group_by(Event.step_index)
    ):
        _step(funnel.steps, step_index or 0).clicked = clicks
    # Who booked or unsubscribed, on the step of the message credited with it.
    for step_index, kind, people in session.execute(
        select(Event.step_index, Event.kind, func.count(func.distinct(Event.contact_id)))
        .where(
            Event.campaign_id == campaign.id,
            Event.kind.in_(CREDITED_KINDS),
            Event.step_index.is_not(None),
        )
        .group_by(Event.step_index, Event.kind)
    ):
        setattr(_step(funnel.steps, step_index or 0), str(kind), people)
    for name in ("sent", "delivered", "clicked", "bounced", "failed", "skipped", "uncertain"):
        setattr(funnel, name, sum(getattr(step, name) for step in funnel.steps))
    funnel.pending = sum(step.pending for step in funnel.steps)
    funnel.enrolled = people_enrolled(session, [campaign]).get(campaign.id, funnel.entries)
    funnel.people = _people(session, campaign.id, funnel.enrolled)
    funnel.booked = funnel.people["booked"]
    funnel.unsubscribed = funnel.people["unsubscribed"]
    funnel.branches = branch_funnel(session, campaign)
    return funnel


def branch_funnel(session: Session, campaign: Campaign) -> list[BranchFunnel]:
    """A row per way out of each branching step, with the people who took it: one grouped
    read of the recorded paths (none at all for a sequence without branches)."""
    try:
        sequence = Sequence.from_snapshot(campaign.definition)
    except ValueError:
        return []
    rows = [
        BranchFunnel(step.name, event, target, describe(event, waits, step.then.within))
        for step in sequence.steps
        if step.then is not None
        for waits in [set(step.then.targets()) - {"otherwise"}]
        for event, target in step.then.targets().items()
    ]
    if not rows:
        return rows
    taken: Counter[str] = Counter()
    for path, count in session.execute(
        select(Enrollment.path, func.count())
        .where(Enrollment.campaign_id == campaign.id, Enrollment.path.is_not(None))
        .group_by(Enrollment.path)
    ):
        for decision in str(path).split(","):
            taken[decision] += count
    for row in rows:
        row.people = taken[f"{row.step}:{row.event}"]
    for row in rows:
        row.decided = sum(other.people for other in rows if other.step == row.step)
    return rows


def _people(session: Session, campaign_id: int, enrolled: int) -> dict[str, int]:
    """Distinct contacts at each stage: one read of the campaign's messages, one of its events."""
    sent_to, delivered_to = session.execute(
        select(
            func.count(func.distinct(case((Message.state.in_(SENT_STATES), Message.contact_id)))),
            func.count(
                func.distinct(case((Message.state == MessageState.DELIVERED, Message.contact_id)))
            ),
        ).where(Message.campaign_id == campaign_id)
    ).one()
    people = {"enrolled": enrolled, "sent": sent_to, "delivered": delivered_to}
    people.update(dict.fromkeys(("clicked", *CREDITED_KINDS), 0))
    for kind, count in session.execute(
        select(Event.kind, func.count(func.distinct(Event.contact_id)))
        .where(Event.campaign_id == campaign_id, Event.kind.in_(("clicked", *CREDITED_KINDS)))
        .group_by(Event.kind)
    ):
        people[str(kind)] = count
    return people


def _add_message_state(step: StepFunnel, state: str, count: int) -> None:
    step.reached += count
    if state in SENT_STATES:
        step.sent += count
    if state in PENDING_STATES:
        step.pending += count
    elif state == MessageState.DELIVERED:
        step.delivered += count
    elif state == MessageState.UNDELIVERED:
        step.bounced += count
    elif state == MessageState.FAILED:
        step.failed += count
    elif state == MessageState.SKIPPED:
        step.skipped += count
    elif state == MessageState.UNCERTAIN:
        step.uncertain += count


def people_enrolled(session: Session, campaigns: Iterable[Campaign]) -> dict[int, int]:
    """People (distinct contacts) enrolled in those of `campaigns` a person may enter more than
    once: the event-started ones (campaigns.triggers, `reenter_after`). In the others each person
    has one enrollment (enroll_audience), so their entries are their people and cost no read.
    One grouped read over the (campaign, contact, entry) key."""
    ids = [campaign.id for campaign in campaigns if _may_reenter(campaign)]
    if not ids:
        return {}
    rows = session.execute(
        select(Enrollment.campaign_id, func.count(func.distinct(Enrollment.contact_id)))
        .where(Enrollment.campaign_id.in_(ids))
        .group_by(Enrollment.campaign_id)
    )
    return {campaign_id: people for campaign_id, people in rows}


def _may_reenter(campaign: Campaign) -> bool:
    try:
        return Sequence.from_snapshot(campaign.definition).trigger != "launch"
    except ValueError:
        return True  # unreadable: count people the sure way


# -- the campaign list -----------------------------------------------------------------------------
@dataclass
class CampaignCounts:
    enrolled: int = 0  # people (distinct contacts)
    entries: int = 0  # enrollments, re-entries included
    active: int = 0
    completed: int = 0
    exited: int = 0
    sent: int = 0


def campaign_counts(session: Session) -> dict[int, CampaignCounts]:
    """Enrollment counts of every campaign and messages sent, grouped over the report indexes."""
    counts: dict[int, CampaignCounts] = {}
    for campaign_id, state, count in session.execute(
        select(Enrollment.campaign_id, Enrollment.state, func.count()).group_by(
            Enrollment.campaign_id, Enrollment.state
        )
    ):
        row = counts.setdefault(campaign_id, CampaignCounts())
        row.entries += count
        row.enrolled += count  # people, unless some entered again (below)
        if state in IN_SEQUENCE:  # paused for a person's answer: still in progress
            row.active += count
        elif state in (EnrollmentState.COMPLETED, EnrollmentState.EXITED):
            setattr(row, str(state), getattr(row, str(state)) + count)
    for campaign_id, people in people_enrolled(session, session.scalars(select(Campaign))).items():
        counts[campaign_id].enrolled = people
    for campaign_id, count in session.execute(
        select(Message.campaign_id, func.count())
        .where(Message.sent_at.is_not(None))
        .group_by(Message.campaign_id)
    ):
        counts.setdefault(campaign_id, CampaignCounts()).sent = count
    return counts


# -- the daily series ------------------------------------------------------------------------------
@dataclass
class DailyPoint:
    day: date
    enrolled: int = 0
    sent: int = 0
    delivered: int = 0
    clicked: int = 0
    booked: int = 0
    unsubscribed: int = 0


DAILY_SERIES = ("enrolled", "sent", "clicked", "booked", "unsubscribed")


def day_bounds(first_day: date, days: int, zone: str) -> list[tuple[datetime, datetime]]:
    """Local midnights in `zone` as UTC instants (23- and 25-hour days across DST included)."""
    tz = ZoneInfo(zone)
    midnights = [
        datetime.combine(first_day + timedelta(days=n), datetime.min.time(), tz).astimezone(UTC)
        for n in range(days + 1)
    ]
    return list(pairwise(midnights))


def _counts_per_day(
    session: Session,
    column: SQLColumnExpression[datetime | None],
    where: list[ColumnElement[bool]],
    bounds: list[tuple[datetime, datetime]],
) -> list[int]:
    """One statement of per-day index range counts: no per-row function, no sort."""
    per_day = [
        select(func.count()).where(*where, column >= lo, column < hi).scalar_subquery()
        for lo, hi in bounds
    ]
    return [int(value or 0) for value in session.execute(select(*per_day)).one()]


def daily_series(
    session: Session, campaign_id: int, *, end: datetime, days: int = 30, zone: str = "UTC"
) -> list[DailyPoint]:
    """Per local day in `zone` (the clinic's), the last `days` days up to `end`."""
    last_day = end.astimezone(ZoneInfo(zone)).date()
    first_day = last_day - timedelta(days=days - 1)
    bounds = day_bounds(first_day, days, zone)
    points = [DailyPoint(first_day + timedelta(days=n)) for n in range(days)]
    series: dict[str, tuple[SQLColumnExpression[datetime | None], list[ColumnElement[bool]]]] = {
        "enrolled": (Enrollment.enrolled_at, [Enrollment.campaign_id == campaign_id]),
        "sent": (Message.sent_at, [Message.campaign_id == campaign_id]),
    }
    for kind in ("delivered", "clicked", "booked", "unsubscribed"):
        series[kind] = (Event.occurred_at, [Event.campaign_id == campaign_id, Event.kind == kind])
    for name, (column, where) in series.items():
        for point, count in zip(
            points, _counts_per_day(session, column, where, bounds), strict=True
        ):
            setattr(point, name, count)
    return points


# -- CSV export ------------------------------------------------------------------------------------
STEP_COLUMNS = [f.name for f in fields(StepFunnel)]


def funnel_csv(funnel: CampaignFunnel, series: list[DailyPoint]) -> str:
    """One file a spreadsheet opens: the totals row, one row per step, the branches (if any),
    then the daily series."""
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(["campaign", *STEP_COLUMNS])
    totals = Counter({name: getattr(funnel, name, 0) for name in STEP_COLUMNS[3:]})
    totals["reached"] = funnel.enrolled
    writer.writerow([funnel.name, "", "all steps", "", *(totals[c] for c in STEP_COLUMNS[3:])])
    for step in funnel.steps:
        writer.writerow([funnel.name, *(getattr(step, c) for c in STEP_COLUMNS)])
    if funnel.branches:
        writer.writerow([])
        writer.writerow(["branch after", "who", "went on to", "people", "decided"])
        for branch in funnel.branches:
            writer.writerow(
                [branch.step, branch.label, branch.target, branch.people, branch.decided]
            )
    writer.writerow([])
    names = [f.name for f in fields(DailyPoint)]
    writer.writerow(names)
    for point in series:
        writer.writerow([getattr(point, name) for name in names])
    return out.getvalue()


# -- what will be sent soon ------------------------------------------------------------------------
@dataclass
class UpcomingDay:
    day: date
    by_step: dict[int, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.by_step.values())


def upcoming(
    session: Session, campaign_id: int, *, now: datetime, days: int = 7, zone: str = "UTC"
) -> list[UpcomingDay]:
    """Messages waiting to go out in the next `days` local days, per day and step.

    The planner writes each step's row (already moved into its window and the quiet hours) as
    soon as the previous step settles, so the waiting rows are the schedule; a contact's later
    steps appear once the earlier one is sent (scheduler.simulate projects those too).
    Rows due later than now are read index-only (unsent: sent_at NULL; a row that failed or was
    skipped was due when it was handled, so it is never in the future). Overdue rows still
    waiting go out at the next tick and count for today; there are few, found by state.
    """
    today = now.astimezone(ZoneInfo(zone)).date()
    bounds = day_bounds(today, days, zone)
    bounds[0] = (now, bounds[0][1])
    result: list[UpcomingDay] = []
    for day_number, (lo, hi) in enumerate(bounds):
        entry = UpcomingDay(today + timedelta(days=day_number))
        for step_index, count in session.execute(
            select(Message.step_index, func.count())
            .where(
                Message.campaign_id == campaign_id,
                Message.sent_at.is_(None),
                Message.due_at > lo,
                Message.due_at <= hi,
            )
            .group_by(Message.step_index)
        ):
            entry.by_step[step_index] = count
        result.append(entry)
    for step_index, count in session.execute(
        select(Message.step_index, func.count())
        .where(
            Message.state.in_([str(state) for state in PENDING_STATES]),
            Message.due_at <= now,
            # "+ 0" keeps the planners off the campaign index (SQLite's documented way to
            # disqualify a term), which would walk every row of the campaign: the state and
            # due-time index finds the few overdue rows directly.
            Message.campaign_id + 0 == campaign_id,
        )
        .group_by(Message.step_index)
    ):
        result[0].by_step[step_index] = result[0].by_step.get(step_index, 0) + count
    return [entry for entry in result if entry.total]
