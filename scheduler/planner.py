"""The planner: gives each active enrollment's next step a message row with its due time.

A step is due `delay` after the previous step settled (or after enrollment for the first), moved
into the step's send window and, for texts, the quiet hours in the contact's time zone. One row
per (enrollment, step), so planning twice is harmless: the unique key refuses a second row, and
the insert says ON CONFLICT DO NOTHING.

Set-based, a batch of enrollments at a time: one statement reads the batch with its contacts'
facts and each previous step's settle time, one looks up its suppressions, the messages go in
as one INSERT ... SELECT per step and due time that several share (a launch's batch, enrolled
at one instant: one per time zone) plus one executemany for the due times of their own (a later
step counts from each contact's own send), and one update per step (and per way of leaving)
moves the enrollments on. No ORM object per enrollment: at launch that walk was a third of the
worker's time (issue 16). The window rules (scheduler.windows) are asked once per instant, zone,
step and state rule; the exit rule is the send-time one (scheduler.checks).

A text to a number under a state rule (contacts.state_rules: Florida, Oklahoma, Maryland) is due
inside the state's hours too, and no earlier than its count allows: the contact's texts sent,
claimed or planned (at their due time) across every campaign, read with one query per batch,
plus those this batch plans, are counted as the dispatcher will count them when it comes due.
The dispatcher's check at the send stays the authority (two planners may each plan a third).

Which step comes next is campaigns.paths' rule: the next in the file, a step's `next`, or, after
a branching step, its branch once decided (scheduler.branching: a booking-link click or a reply
within its time, or the time up). A waiting enrollment is left out of the ready walk until its
deadline (Enrollment.wait_until), unless each tick's look for new deciding events wakes it
(scheduler.branching.Wakeups: one read of the newest event id, and one UPDATE when events
came); the branch taken is added to `Enrollment.path`. A sequence without branches walks
exactly as before: a tuple look-up and a NULL test a row more, and no extra statement.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Select, and_, case, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from campaigns.definitions import Sequence
from campaigns.enrollment import enroll_audience
from campaigns.paths import Paths, paths_of
from contacts.state_rules import DAY, StateRule, rule_for
from contacts.suppressions import hasher_of
from core.clock import Clock, utcnow
from core.settings import Settings
from scheduler.appointments import Appointments
from scheduler.branching import Branches, Wakeups
from scheduler.checks import Facts, exit_reason, suppressed_among, texts_since
from scheduler.windows import QuietHours, next_allowed, next_allowed_text, texting_hours
from storage.db import transaction
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
from storage.sql_lists import among

NO_WINDOW = "no allowed send time in the step's window"
#: What a step's message holds beside whose it is: the same for every enrollment due at once.
_MESSAGE_COLUMNS = ("step_index", "channel", "due_at", "state", "skip_reason", "not_after")


@dataclass
class PlanResult:
    enrolled: int = 0
    planned: int = 0
    completed: int = 0
    exited: dict[str, int] = field(default_factory=dict)
    #: branches decided, by what happened ("clicked", "replied", "otherwise")
    branched: dict[str, int] = field(default_factory=dict)


class Ready(NamedTuple):
    """An enrollment whose next step may be planned, with what its exit rules and due time read
    (a column-only query: the shape scheduler.checks' rules take)."""

    id: int
    campaign_id: int
    contact_id: int
    planned_step: int
    enrolled_at: datetime
    settled_at: datetime | None  # when the previous step settled (None before the first)
    timezone: str
    email: str | None
    phone: str | None
    email_consent: str | None
    sms_consent: str | None
    booked_at: datetime | None
    erased_at: datetime | None

    def address(self, channel: str) -> str | None:
        return self.email if channel == "email" else self.phone

    def consent(self, channel: str) -> str | None:
        return self.email_consent if channel == "email" else self.sms_consent


_PREVIOUS = Message.__table__.alias("previous")
_READY_COLUMNS = (
    Enrollment.id,
    Enrollment.campaign_id,
    Enrollment.contact_id,
    Enrollment.planned_step,
    Enrollment.enrolled_at,
    func.coalesce(_PREVIOUS.c.sent_at, _PREVIOUS.c.updated_at),
    Contact.timezone,
    Contact.email,
    Contact.phone,
    Contact.email_consent,
    Contact.sms_consent,
    Contact.booked_at,
    Contact.erased_at,
)


class _Counted(NamedTuple):
    """A text whose due time waits for its state rule's count (Planner._counted)."""

    row: Ready
    sequence: Sequence
    step_index: int
    due: datetime
    rule: StateRule


@dataclass
class _Batch:
    """What one batch writes: messages by what they hold, enrollments moved on by step, ended
    by state and reason, and its branches (scheduler.branching.Branches)."""

    due: dict[tuple[Any, ...], datetime | None] = field(default_factory=dict)  # shared by many
    messages: dict[tuple[Any, ...], list[Ready]] = field(default_factory=lambda: defaultdict(list))
    planned: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    ended: dict[tuple[str, str | None], list[int]] = field(
        default_factory=lambda: defaultdict(list)
    )
    counted: list[_Counted] = field(default_factory=list)  # texts under a state rule
    branches: Branches = field(default_factory=Branches)
    pins: dict[int, int | None] = field(default_factory=dict)  # _Campaigns.pins


def _pin(pins: dict[int, int | None], rows: list[Ready]) -> Any:
    """The content version column of an INSERT ... SELECT: one value, or one per campaign."""
    among_rows = {row.campaign_id: pins.get(row.campaign_id) for row in rows}
    if len(set(among_rows.values())) == 1:
        return literal(next(iter(among_rows.values())), Message.content_version_id.type)
    return case(among_rows, value=Enrollment.campaign_id)


def quiet_hours(settings: Settings) -> QuietHours:
    return QuietHours(
        allowed_from=settings.scheduler.sms_quiet_hours_end,
        allowed_until=settings.scheduler.sms_quiet_hours_start,
    )


@dataclass
class _Campaigns:
    """Each campaign's sequence and start, read once per tick (a definition is validated JSON)."""

    known: dict[int, tuple[Sequence, datetime | None]] = field(default_factory=dict)
    ways: dict[int, Paths] = field(default_factory=dict)
    #: the content version each definition in `known` is (read with it): a message carries the
    #: version it was planned from, even when an upgrade re-pins the campaign mid-tick
    pins: dict[int, int | None] = field(default_factory=dict)

    def paths(self, campaign_id: int) -> Paths:
        """The campaign's ways through its sequence (campaigns.paths), built once per tick."""
        found = self.ways.get(campaign_id)
        if found is None:
            found = self.ways[campaign_id] = paths_of(self.known[campaign_id][0])
        return found

    def load(self, session: Session, ids: set[int]) -> dict[int, tuple[Sequence, datetime | None]]:
        missing = ids - self.known.keys()
        if missing:
            rows = session.execute(
                select(
                    Campaign.id,
                    Campaign.definition,
                    Campaign.starts_at,
                    Campaign.content_version_id,
                ).where(Campaign.id.in_(missing))
            )
            for row in rows:
                self.known[row.id] = (Sequence.from_snapshot(row.definition), row.starts_at)
                self.pins[row.id] = row.content_version_id
        return self.known


class Planner:
    def __init__(
        self, settings: Settings, sessions: sessionmaker[Session], clock: Clock = utcnow
    ) -> None:
        self.settings, self.sessions, self.clock = settings, sessions, clock
        self.quiet = quiet_hours(settings)
        self.default_lateness = timedelta(hours=settings.scheduler.max_lateness_hours)
        self.wakeups = Wakeups()  # this planner's look for clicks and replies

    def tick(self) -> PlanResult:
        result = PlanResult()
        now = self.clock()
        newest: int | None = None  # the newest event id looked at, when a campaign branches
        with transaction(self.sessions, immediate=True) as session:
            active = [
                (campaign, Sequence.from_snapshot(campaign.definition))
                for campaign in session.scalars(
                    select(Campaign).where(Campaign.state == CampaignState.ACTIVE)
                )
            ]
            if any(step.then for _, sequence in active for step in sequence.steps):
                # First in the transaction (its row locks before any enrollment's), and before
                # the walk, which then plans the woken.
                newest = self.wakeups.look(session, now)
            for campaign, sequence in active:
                if sequence.audience.enroll_new_contacts and campaign.starts_at:
                    at = max(now, campaign.starts_at)
                    result.enrolled += enroll_audience(
                        session, campaign, at=at, limit=self.settings.scheduler.batch_size
                    )
        if newest is None:
            self.wakeups.forget()  # none waits in an active campaign: look at all when one does
        else:
            self.wakeups.seen(newest)
        campaigns = _Campaigns()
        after_id = 0  # keyset: each tick walks the enrollments once, never rescans a batch
        with self.sessions() as probe:
            on_sqlite = probe.get_bind().dialect.name == "sqlite"
        while True:
            found: list[int] | None = None
            if on_sqlite:
                # Found in a read transaction: walking a big campaign's enrollments for the few
                # that are ready takes a while, and the write lock is the web server's too.
                with transaction(self.sessions, immediate=False) as session:
                    found = self._ready_ids(session, after_id, now)
                if not found:
                    return result
            with transaction(self.sessions, immediate=True) as session:
                batch, after_id = self._plan_batch(session, now, result, campaigns, after_id, found)
            if batch < self.settings.scheduler.batch_size:
                return result

    def _ready_query(
        self, on_sqlite: bool, after_id: int, now: datetime, *columns: Any
    ) -> Select[Any]:
        """Active enrollments after `after_id` whose next step may be planned: none planned
        yet, or the previous step settled, and no branch waiting past `now` (wait_until).

        On SQLite the state is compared as `state || ''`, which keeps its planner (it has no
        statistics) off the state index: through it, every batch read and sorted all of the
        active enrollments to return 500 (a launch of N contacts cost O(N^2)); walking the
        primary key from `after_id` reads each enrollment once per tick."""
        enrollment_state = Enrollment.state.concat("") if on_sqlite else Enrollment.state
        return (
            select(*columns)
            .join(Campaign, Campaign.id == Enrollment.campaign_id)
            .outerjoin(
                _PREVIOUS,
                and_(
                    _PREVIOUS.c.enrollment_id == Enrollment.id,
                    _PREVIOUS.c.step_index == Enrollment.planned_step,
                ),
            )
            .where(
                Enrollment.id > after_id,
                enrollment_state == str(EnrollmentState.ACTIVE),
                Campaign.state == CampaignState.ACTIVE,
                or_(
                    Enrollment.planned_step == -1,
                    _PREVIOUS.c.state.in_([str(state) for state in SETTLED_STATES]),
                ),
                or_(Enrollment.wait_until.is_(None), Enrollment.wait_until <= now),
            )
            .order_by(Enrollment.id)
            .limit(self.settings.scheduler.batch_size)
        )

    def _ready_ids(self, session: Session, after_id: int, now: datetime) -> list[int]:
        """The next batch's ids, found without the write lock (SQLite)."""
        return list(session.scalars(self._ready_query(True, after_id, now, Enrollment.id)))

    def _ready(
        self, session: Session, after_id: int, found: list[int] | None, now: datetime
    ) -> list[Ready]:
        """The batch with its facts, as plain rows; locked on PostgreSQL so two workers never
        plan the same enrollment; `found` (SQLite) re-checks, under the write lock, the ones
        the read transaction found."""
        connection = session.connection()
        on_sqlite = connection.dialect.name == "sqlite"
        query = self._ready_query(on_sqlite, after_id, now, *_READY_COLUMNS).join(
            Contact, Contact.id == Enrollment.contact_id
        )
        if found is not None:
            query = query.where(among(Enrollment.id, found, connection.dialect.name))
        if not on_sqlite:
            query = query.with_for_update(of=Enrollment, skip_locked=True)
        return [Ready._make(values) for values in connection.execute(query)]

    def _plan_batch(
        self,
        session: Session,
        now: datetime,
        result: PlanResult,
        campaigns: _Campaigns,
        after_id: int,
        found: list[int] | None = None,
    ) -> tuple[int, int]:
        """One batch of ready enrollments after `after_id` (or those `found` ready, checked again
        under the write lock). Returns the batch's size and where it ended."""
        ready = self._ready(session, after_id, found, now)
        if found:
            size, end = len(found), found[-1]
        else:
            size, end = len(ready), ready[-1].id if ready else after_id
        if not ready:
            return size, end
        known = campaigns.load(session, {row.campaign_id for row in ready})
        facts = self._suppressions(session, ready, known)
        appointments = Appointments.of(session, ready, known)  # steps timed before the visit
        batch = _Batch(pins=campaigns.pins)
        for row in ready:
            sequence, starts_at = known[row.campaign_id]
            reason = exit_reason(row, sequence, facts)
            if reason is not None:
                batch.ended[(EnrollmentState.EXITED, reason)].append(row.id)
                result.exited[reason] = result.exited.get(reason, 0) + 1
                continue
            paths = campaigns.paths(row.campaign_id)
            if batch.branches.waits_on(row, sequence, paths):
                continue  # after a branching step: decided below, or still waiting
            index = paths.after(row.planned_step)
            if index is None:
                batch.ended[(EnrollmentState.COMPLETED, None)].append(row.id)
                result.completed += 1
                continue
            base = row.settled_at or max(row.enrolled_at, starts_at or row.enrolled_at)
            base = appointments.counting_from(row.id, sequence.steps[index], base)
            self._place(batch, row, sequence, index, base, now)
        rows = {row.id: row for row in ready} if batch.branches.waiting else {}
        for decided in batch.branches.decide(session, now):
            row = rows[decided.waiting.id]
            result.branched[decided.event] = result.branched.get(decided.event, 0) + 1
            if decided.target is None:
                batch.ended[(EnrollmentState.COMPLETED, None)].append(row.id)
                result.completed += 1
                continue
            sequence = known[row.campaign_id][0]
            self._place(batch, row, sequence, decided.target, decided.at, now)
        for text, counted_when in self._counted(session, batch.counted):
            message = self._message(text.sequence, text.step_index, counted_when, now)
            batch.messages[message].append(text.row)
        batch.messages = appointments.at_visits(batch.messages, known, now)  # never at the visit
        self._write(session, batch, now)
        result.planned += sum(len(rows) for rows in batch.messages.values())
        return size, end

    def _place(
        self,
        batch: _Batch,
        row: Ready,
        sequence: Sequence,
        index: int,
        base: datetime,
        now: datetime,
    ) -> None:
        """Plan step `index` for `row`, its delay counted from `base`: its message joins the
        batch's others due at the same time (a text under a state rule waits to be counted)."""
        rule = rule_for(row.phone) if sequence.steps[index].channel == "sms" else None
        key = (base, row.timezone, row.campaign_id, index, rule)
        if key not in batch.due:
            batch.due[key] = self._due(sequence, index, base, row.timezone, rule)
        batch.planned[index].append(row.id)
        when = batch.due[key]
        if rule is not None and when is not None:
            batch.counted.append(_Counted(row, sequence, index, when, rule))
            return
        batch.messages[self._message(sequence, index, when, now)].append(row)

    @staticmethod
    def _suppressions(
        session: Session, ready: list[Ready], known: dict[int, tuple[Sequence, Any]]
    ) -> Facts:
        """The batch's address hashes and active suppressions, in the form the send-time rules
        (scheduler.checks) read them: the planner applies the very same exit rule."""
        hasher = hasher_of(session)
        hashes = {
            (channel, address): hasher(channel, address)
            for row in ready
            for channel in ("email", "sms")
            if (address := row.address(channel))
        }
        sequences = {campaign_id: sequence for campaign_id, (sequence, _) in known.items()}
        suppressed = suppressed_among(session, hashes.values())
        return Facts([], {}, sequences, suppressed, hashes)

    def _due(
        self, sequence: Sequence, index: int, base: datetime, zone: str, rule: StateRule | None
    ) -> datetime | None:
        step = sequence.steps[index]
        quiet = texting_hours(self.quiet, rule) if step.channel == "sms" else None
        return next_allowed(base + step.delay, zone, step.window, quiet)

    def _counted(
        self, session: Session, counted: list[_Counted]
    ) -> list[tuple[_Counted, datetime | None]]:
        """Texts under a state rule, each due when the rule's count allows it and inside the
        step's window and the state's hours (None: the window never opens again). Counted in
        due order, so a contact's texts planned by this batch count for its later ones."""
        if not counted:
            return []
        since = min(text.due for text in counted) - DAY
        contacts = {text.row.contact_id for text in counted}
        texted = texts_since(session, contacts, since, planned=True)
        out: list[tuple[_Counted, datetime | None]] = []
        for text in sorted(counted, key=lambda text: (text.due, text.row.id)):
            times = texted.setdefault(text.row.contact_id, [])
            window = text.sequence.steps[text.step_index].window
            when = next_allowed_text(
                text.due, text.row.timezone, window, self.quiet, text.rule, times
            )
            if when is not None:
                times.append(when)
            out.append((text, when))
        return out

    def _message(
        self, sequence: Sequence, index: int, due: datetime | None, now: datetime
    ) -> tuple[Any, ...]:
        """A step's message (_MESSAGE_COLUMNS), the same for every enrollment due at that time.
        Skipped, with its reason, if its window never opens."""
        step = sequence.steps[index]
        if due is None:
            return (index, step.channel, now, str(MessageState.SKIPPED), NO_WINDOW, None)
        lateness = step.max_lateness or self.default_lateness
        return (index, step.channel, due, str(MessageState.PLANNED), None, due + lateness)

    @staticmethod
    def _write(session: Session, batch: _Batch, now: datetime) -> None:
        """The batch's messages: one INSERT ... SELECT for each step and due time that several
        enrollments share (a launch's batch: one per time zone), and one executemany for those
        due at a time of their own (a later step counts from each one's own send); then one
        update per step planned and per way of leaving, and the branches' (Branches.write).
        ON CONFLICT DO NOTHING: a row already there (another planner's) stays as it is, and
        the enrollment moves on to it."""
        messages, planned, ended = batch.messages, batch.planned, batch.ended
        connection = session.connection()
        dialect = connection.dialect.name
        insert = (postgresql if dialect == "postgresql" else sqlite).insert(Message.__table__)
        insert = insert.on_conflict_do_nothing(index_elements=["enrollment_id", "step_index"])
        alone: list[dict[str, Any]] = []
        for message, rows in messages.items():
            if len(rows) == 1:
                [row] = rows
                values = dict(zip(_MESSAGE_COLUMNS, message, strict=True))
                whose = {"enrollment_id": row.id, "campaign_id": row.campaign_id,
                         "contact_id": row.contact_id}  # fmt: skip
                pinned = {"content_version_id": batch.pins.get(row.campaign_id)}
                alone.append({**whose, **values, **pinned, "attempts": 0, "updated_at": now})
                continue
            shared = select(
                Enrollment.id,
                Enrollment.campaign_id,
                Enrollment.contact_id,
                *(literal(value, Message.__table__.c[name].type)
                  for name, value in zip(_MESSAGE_COLUMNS, message, strict=True)),
                _pin(batch.pins, rows),
                literal(0),
                literal(now, Message.updated_at.type),
            ).where(among(Enrollment.id, [row.id for row in rows], dialect))  # fmt: skip
            columns = ["enrollment_id", "campaign_id", "contact_id", *_MESSAGE_COLUMNS,
                       "content_version_id", "attempts", "updated_at"]  # fmt: skip
            connection.execute(insert.from_select(columns, shared))
        if alone:
            connection.execute(insert, alone)
        for index, ids in planned.items():
            connection.execute(
                update(Enrollment)
                .where(among(Enrollment.id, ids, dialect))
                .values(planned_step=index)
            )
        for (state, reason), ids in ended.items():
            exited = now if state == EnrollmentState.EXITED else None
            connection.execute(
                update(Enrollment)
                .where(among(Enrollment.id, ids, dialect))
                .values(state=state, exit_reason=reason, exited_at=exited)
            )
        batch.branches.write(connection)
