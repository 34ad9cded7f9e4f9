"""The send-time rules, checked in bulk: everything may have changed since planning.

Checked when a batch is claimed and again right before each sub-batch's provider calls: campaign
paused or cancelled, enrollment exited or paused (a reply awaits staff), contact booked or
erased, consent withdrawn, address suppressed (an unsubscribe takes effect before the next
send), the step's maximum lateness, and the send window and TCPA quiet hours at the moment of
sending (a late tick must not text at 23:00), narrowed by the number's state rule
(contacts.state_rules: Florida, Oklahoma and Maryland allow 8:00-20:00 and three texts a day).
Facts are loaded with a few set-based queries per batch, never one query per message; a
number's state is looked up once per area code.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from campaigns.content_render import version_of
from campaigns.definitions import Sequence, Step
from contacts.reachability import is_reachable
from contacts.state_rules import rule_for
from contacts.suppressions import hasher_of
from scheduler.claims import unindexed
from scheduler.windows import QuietHours, next_allowed, next_allowed_text, texting_hours
from storage.models import (
    Campaign,
    CampaignState,
    Contact,
    ContentVersion,
    Enrollment,
    EnrollmentState,
    Message,
    MessageState,
    Suppression,
)
from storage.sql_lists import among, not_among


class Action(enum.StrEnum):
    SEND = "send"
    RELEASE = "release"  # paused: back to planned, untouched
    SKIP = "skip"
    EXIT = "exit"  # skip, and the enrollment leaves the sequence
    DEFER = "defer"
    FAIL = "fail"


@dataclass(frozen=True)
class Verdict:
    action: Action
    reason: str = ""
    until: datetime | None = None


SEND = Verdict(Action.SEND)
#: How long a paused enrollment's due message waits before it is looked at again: deferred, not
#: released (a release would be claimed again at every tick), and sent at most this late after
#: staff resume the enrollment.
PAUSED_RECHECK = timedelta(minutes=15)


class Row(NamedTuple):
    """One claimed message with the facts its rules need (a joined, column-only query; a tuple,
    because a frozen dataclass's __init__ cost more than the query per row)."""

    id: int
    enrollment_id: int
    campaign_id: int
    contact_id: int
    step_index: int
    channel: str
    attempts: int
    not_after: datetime | None
    enrollment_state: str
    exit_reason: str | None
    email: str | None
    phone: str | None
    timezone: str
    email_consent: str | None
    sms_consent: str | None
    booked_at: datetime | None
    erased_at: datetime | None
    first_name: str
    last_name: str
    custom_fields: dict[str, Any]
    language: str  # which templates the composer picks (core.languages)
    #: the content version the message was planned with, when an upgrade stamped it
    content_version_id: int | None

    def address(self, channel: str) -> str | None:
        return self.email if channel == "email" else self.phone

    def consent(self, channel: str) -> str | None:
        return self.email_consent if channel == "email" else self.sms_consent


_COLUMNS = (
    Message.id,
    Message.enrollment_id,
    Message.campaign_id,
    Message.contact_id,
    Message.step_index,
    Message.channel,
    Message.attempts,
    Message.not_after,
    Enrollment.state,
    Enrollment.exit_reason,
    Contact.email,
    Contact.phone,
    Contact.timezone,
    Contact.email_consent,
    Contact.sms_consent,
    Contact.booked_at,
    Contact.erased_at,
    Contact.first_name,
    Contact.last_name,
    Contact.custom_fields,
    Contact.language,
    Message.content_version_id,
)


class Reachable(Protocol):
    """What the exit and reachability rules read of a contact: a claimed message's Row here,
    an enrollment the planner is about to move on (scheduler.planner.Ready) there."""

    @property
    def booked_at(self) -> datetime | None: ...
    @property
    def erased_at(self) -> datetime | None: ...
    def address(self, channel: str) -> str | None: ...
    def consent(self, channel: str) -> str | None: ...


@dataclass
class Facts:
    rows: list[Row]
    campaigns: dict[int, tuple[str, str]]  # id -> (name, state)
    sequences: dict[int, Sequence]
    suppressed: set[tuple[str, str]]  # active (channel, address hash)
    hashes: dict[tuple[str, str], str]  # (channel, address) -> hash, computed once per batch
    #: next_allowed per (instant, zone, campaign, step, quiet hours): a batch shares a handful
    windows: dict[tuple[Any, ...], datetime | None] = field(default_factory=dict)
    #: campaign id -> the content version it runs (None: its definition and the template files)
    pins: dict[int, int | None] = field(default_factory=dict)
    #: content version id -> its definition, for every version a row of the batch renders with
    versions: dict[int, Sequence] = field(default_factory=dict)

    def sequence_for(self, row: Row) -> Sequence:
        """The definition that governs this message, by the rule rendering uses
        (campaigns.content_render.version_of): the content version it was planned with, else
        its campaign's pin, else the campaign's snapshot. An upgrade may have removed its step
        from the campaign's current definition; the version it renders with still has it."""
        version = version_of(row.content_version_id, self.pins.get(row.campaign_id))
        return self.sequences[row.campaign_id] if version is None else self.versions[version]

    def step_for(self, row: Row) -> Step | None:
        """The message's step in its governing definition; None when that definition has no
        such step on the message's channel (planned from a definition replaced meanwhile)."""
        steps = self.sequence_for(row).steps
        if row.step_index >= len(steps) or steps[row.step_index].channel != row.channel:
            return None
        return steps[row.step_index]

    def reachable(self, row: Reachable, channel: str) -> bool:
        """contacts.reachability's rule, asked of the batch's suppressions loaded up front."""
        return is_reachable(row.consent(channel), row.address(channel), channel, self._suppressed)

    def _suppressed(self, channel: str, address: str) -> bool:
        digest = self.hashes[(channel, address)]  # every row's addresses, hashed by the loader
        return (channel, digest) in self.suppressed


def _with_contacts(query: Select[Any], ids: Iterable[int], dialect: str) -> Select[Any]:
    """Messages `ids` joined to their enrollment and contact."""
    return (
        query.join(Enrollment, Enrollment.id == Message.enrollment_id)
        .join(Contact, Contact.id == Message.contact_id)
        .where(among(Message.id, ids, dialect))
    )


def load_facts(
    session: Session, ids: Iterable[int], sequences: dict[int, Sequence] | None = None
) -> Facts:
    """Rows, campaign states, sequences (cached by the caller) and suppressions for `ids`."""
    connection = session.connection()  # Core: the ORM's result path cost more than the query
    query = _with_contacts(select(*_COLUMNS), ids, connection.dialect.name).order_by(Message.id)
    rows = [Row._make(values) for values in connection.execute(query)]
    campaign_ids = {row.campaign_id for row in rows}
    sequences = {} if sequences is None else sequences
    campaigns: dict[int, tuple[str, str]] = {}
    pins: dict[int, int | None] = {}
    for campaign_id, name, state, pin in connection.execute(
        select(Campaign.id, Campaign.name, Campaign.state, Campaign.content_version_id).where(
            Campaign.id.in_(campaign_ids)
        )
    ):
        campaigns[campaign_id] = (name, state)
        pins[campaign_id] = pin
    missing = campaign_ids - sequences.keys()
    for snapshot in connection.execute(
        select(Campaign.id, Campaign.definition).where(Campaign.id.in_(missing))
    ):
        sequences[snapshot.id] = Sequence.from_snapshot(snapshot.definition)
    versions = _versions(session, {version_of(row.content_version_id, pins.get(row.campaign_id))
                                   for row in rows})  # fmt: skip
    hasher = hasher_of(session)
    hashes = {
        (channel, address): hasher(channel, address)
        for row in rows
        for channel in ("email", "sms")
        if (address := row.address(channel))
    }
    suppressed = suppressed_among(session, hashes.values())
    return Facts(rows, campaigns, sequences, suppressed, hashes, pins=pins, versions=versions)


def _versions(session: Session, ids: Iterable[int | None]) -> dict[int, Sequence]:
    """The definitions of these content versions: one query, whatever their number."""
    wanted = {id_ for id_ in ids if id_ is not None}
    if not wanted:
        return {}
    query = select(ContentVersion.id, ContentVersion.definition).where(
        ContentVersion.id.in_(wanted)
    )
    found: dict[int, Sequence] = {}
    for row in session.execute(query):
        found[row.id] = Sequence.from_snapshot(row.definition)
    return found


#: What can change between the claim and the send, read again right before each sub-batch (the
#: names, custom fields and lateness limit were read at the claim and rendered already).
_FRESH = slice(8, 17)  # Row's fields from enrollment_state to erased_at
_FRESH_COLUMNS = (Message.id, *_COLUMNS[_FRESH])


def refresh_facts(session: Session, claimed: Facts, ids: Iterable[int]) -> Facts:
    """The claim's facts for `ids`, with everything that may have changed since read again:
    enrollment, consent, addresses, booking, erasure, campaign states and suppressions.

    About a third of load_facts' cost: no JSON or lateness to decode again, and address hashes
    are reused (an address that changed gets its own)."""
    by_id = {row.id: row for row in claimed.rows}
    connection = session.connection()
    query = _with_contacts(select(*_FRESH_COLUMNS), ids, connection.dialect.name)
    rows = []
    for fresh in connection.execute(query):
        old = by_id[fresh[0]]
        rows.append(Row._make((*old[: _FRESH.start], *fresh[1:], *old[_FRESH.stop :])))
    campaigns = {
        campaign_id: (name, state)
        for campaign_id, name, state in connection.execute(
            select(Campaign.id, Campaign.name, Campaign.state).where(
                Campaign.id.in_({row.campaign_id for row in rows})
            )
        )
    }
    hashes: dict[tuple[str, str], str] = {}
    hasher = hasher_of(session)
    for row in rows:
        for channel in ("email", "sms"):
            if address := row.address(channel):
                key = (channel, address)
                hashes[key] = claimed.hashes.get(key) or hasher(channel, address)
    suppressed = suppressed_among(session, hashes.values())
    return Facts(
        rows,
        campaigns,
        claimed.sequences,
        suppressed,
        hashes,
        pins=claimed.pins,
        versions=claimed.versions,
    )


def suppressed_among(session: Session, digests: Iterable[str]) -> set[tuple[str, str]]:
    """The active suppressions among these address hashes, as (channel, hash)."""
    wanted = list(set(digests))
    if not wanted:
        return set()
    connection = session.connection()
    found = connection.execute(
        select(Suppression.channel, Suppression.address_hash).where(
            among(Suppression.address_hash, wanted, connection.dialect.name),
            Suppression.lifted_at.is_(None),
        )
    )
    return {(channel, digest) for channel, digest in found}


def exit_reason(row: Reachable, sequence: Sequence, facts: Facts) -> str | None:
    """Why this contact leaves the sequence now: checked by the planner before a step is
    planned, and again at the send."""
    if row.erased_at is not None:
        return "erased"
    if sequence.exit.booked and row.booked_at is not None:
        return "booked"
    if sequence.exit.unsubscribed_everywhere and not any(
        facts.reachable(row, channel) for channel in sequence.channels
    ):
        return "unsubscribed"
    return None


def verdict(row: Row, facts: Facts, now: datetime, quiet: QuietHours) -> Verdict:
    """What to do with one claimed message right now; the order matters (pause wins)."""
    _, campaign_state = facts.campaigns[row.campaign_id]
    if campaign_state == CampaignState.PAUSED:
        return Verdict(Action.RELEASE, "campaign paused")
    if campaign_state != CampaignState.ACTIVE:
        return Verdict(Action.SKIP, f"campaign {campaign_state}")
    if row.enrollment_state == EnrollmentState.EXITED:
        return Verdict(Action.SKIP, f"exited: {row.exit_reason}")
    sequence = facts.sequence_for(row)
    reason = exit_reason(row, sequence, facts)
    if reason is not None:
        return Verdict(Action.EXIT, reason)
    if row.enrollment_state == EnrollmentState.PAUSED:  # a reply awaits staff (contacts.inbound)
        return Verdict(
            Action.DEFER, "enrollment paused: a reply awaits staff", now + PAUSED_RECHECK
        )
    if row.not_after is not None and now > row.not_after:
        return Verdict(Action.SKIP, "too late: past the step's maximum lateness")
    step = facts.step_for(row)
    if step is None:  # this message only: the rest of the batch goes on
        return Verdict(
            Action.FAIL,
            f"step {row.step_index + 1} was planned as {row.channel}, and the content "
            "version it renders with has no such step",
        )
    if not facts.reachable(row, step.channel):
        return Verdict(Action.SKIP, f"no {step.channel} consent or suppressed")
    hours = texting_hours(quiet, rule_for(row.phone)) if step.channel == "sms" else None
    key = (now, row.timezone, row.campaign_id, row.step_index, hours)
    if key in facts.windows:
        earliest = facts.windows[key]
    else:
        earliest = next_allowed(now, row.timezone, step.window, hours)
        facts.windows[key] = earliest
    if earliest is None:
        return Verdict(Action.SKIP, "no allowed send time left")
    if earliest > now:
        return Verdict(Action.DEFER, "outside the send window or quiet hours", earliest)
    return SEND


#: Texts that have gone out, or may be going out (claimed by another worker included).
TEXTED_STATES = (
    MessageState.CLAIMED,
    MessageState.SENDING,
    MessageState.SENT,
    MessageState.DELIVERED,
    MessageState.UNCERTAIN,
)


def texts_since(
    session: Session,
    contacts: Iterable[int],
    since: datetime,
    *,
    planned: bool = False,
    leaving_out: Iterable[int] = (),
) -> dict[int, list[datetime]]:
    """Each contact's texts, across every campaign, sent (or claimed) after `since`; with
    `planned`, also those planned, at their due time (the planner counts what will have gone
    out by then). `leaving_out`: message ids not to count (the claim being checked).

    One query for the whole batch. The state is compared unindexed: given `state IN (...)`
    bare, SQLite walks the (state, due_at) index through every text ever sent (36 ms a batch
    at 100,000 sent) instead of looking up each contact's few texts."""
    wanted = sorted(set(contacts))
    if not wanted:
        return {}
    dialect = session.get_bind().dialect.name
    states = [*TEXTED_STATES, MessageState.PLANNED] if planned else TEXTED_STATES
    parts = [Message.sent_at, Message.claimed_at] + ([Message.due_at] if planned else [])
    at = func.coalesce(*parts)
    query = select(Message.contact_id, at).where(
        among(Message.contact_id, wanted, dialect),
        Message.channel == "sms",
        unindexed(Message.state).in_([str(state) for state in states]),
        at > since,
    )
    if leaving_out:
        query = query.where(not_among(Message.id, leaving_out, dialect))
    found: dict[int, list[datetime]] = defaultdict(list)
    for contact, when in session.connection().execute(query):
        found[contact].append(when)
    return dict(found)


def texts_per_day(
    row: Row, texted: list[datetime], now: datetime, facts: Facts, quiet: QuietHours
) -> Verdict:
    """The number's state rule on how many texts a day (contacts.state_rules), at the send:
    SEND, or DEFER to the first moment the count and the texting hours both allow (a text
    the state forbids now waits; it is never skipped for it). `texted`: the contact's texts
    in the last day, across campaigns (texts_since)."""
    rule = rule_for(row.phone)
    if rule is None or rule.next_slot(texted, now) <= now:
        return SEND
    step = facts.step_for(row)
    assert step is not None  # verdict() said SEND: the step exists
    until = next_allowed_text(now, row.timezone, step.window, quiet, rule, texted)
    reason = f"{rule.name} number: {rule.texts} texts a day at most ({rule.law})"
    return Verdict(Action.DEFER, reason, until or rule.next_slot(texted, now))
