"""What a campaign would send, and when, over the next days: the planner's rules, sending nothing.

The same windows, TCPA quiet hours, consent, suppressions and SMS frequency cap as the engine,
applied to the audience as it is now (a campaign not yet launched) or to each active enrollment
from where it stands (a running campaign). Each step is assumed sent at its due time, so the
projection is what would happen if every send succeeded on time.

A branch (campaigns.paths) takes each contact one way, as the planner would: a share of the
contacts who reach it go each way, by the campaign's own figures so far when enough of its
contacts have been decided (`observed_rates`), else by a stated assumption (`BranchRates`).
Contacts are spread over the ways evenly in the order they reach the branch (the golden-ratio
sequence), so any audience splits as near the shares as whole contacts allow, the same on
every run. A click or reply is assumed at the send (the target's delay counts from there);
`otherwise` at the send plus `within`. Every row carries its path (`Projected.path`).

Texts to Florida, Oklahoma and Maryland numbers follow their state rule (contacts.state_rules:
08:00-20:00 local, three a day) through the engine's one function (scheduler.windows.
next_allowed_text); a text the rule moves later says so (`Projected.state_rule`). Only this
campaign's texts are counted: other campaigns' texts to the same contact may move it further.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.audience import audience_query
from campaigns.definitions import Sequence
from campaigns.paths import Decision, Paths, paths_of, span
from contacts.reachability import unreachable_because
from contacts.state_rules import rule_for
from contacts.suppressions import hasher_of
from core.suppression_hash import SuppressionHasher
from scheduler.windows import QuietHours, next_allowed, next_allowed_text
from storage.models import (
    SETTLED_STATES,
    Campaign,
    Contact,
    Enrollment,
    EnrollmentState,
    Message,
    Suppression,
)


@dataclass(frozen=True)
class Projected:
    at: datetime
    step: str
    channel: str
    contact_id: int
    skipped: str = ""  # why it would not be sent; empty when it would be
    state_rule: str = ""  # the state ("FL") whose rule moved this text later; empty if none
    path: str = ""  # the branches taken to get here, as Enrollment.path: "first-visit:clicked"


#: Fewer contacts decided than this, and a campaign's own branch shares say too little.
MIN_OBSERVED = 20
_GOLDEN = 0.6180339887498949


@dataclass(frozen=True)
class BranchRates:
    """The shares of contacts a branch sends each way: clicked, replied, else otherwise."""

    clicked: float = 0.10
    replied: float = 0.05
    source: str = "assumed"  # or "this campaign so far (N decided)"

    def describe(self) -> str:
        return f"clicked {self.clicked:.0%}, replied {self.replied:.0%} ({self.source})"


def observed_rates(session: Session, campaign: Campaign | None) -> BranchRates | None:
    """The campaign's own branch shares so far (Enrollment.path), when at least MIN_OBSERVED
    contacts have been decided; None otherwise (use an assumption)."""
    if campaign is None:
        return None
    taken: dict[str, int] = {}
    for path, count in session.execute(
        select(Enrollment.path, func.count())
        .where(Enrollment.campaign_id == campaign.id, Enrollment.path.is_not(None))
        .group_by(Enrollment.path)
    ):
        for decision in str(path).split(","):
            event = decision.rpartition(":")[2]
            taken[event] = taken.get(event, 0) + count
    decided = sum(taken.values())
    if decided < MIN_OBSERVED:
        return None
    return BranchRates(
        taken.get("clicked", 0) / decided,
        taken.get("replied", 0) / decided,
        f"this campaign so far, {decided:,} decided",
    )


@dataclass
class _Chooser:
    """Spreads the contacts reaching each branching step over its ways, in the rates' shares."""

    rates: BranchRates
    reached: dict[int, int] = field(default_factory=dict)

    def choose(self, index: int, decision: Decision) -> str:
        count = self.reached[index] = self.reached.get(index, 0) + 1
        spot = (count * _GOLDEN) % 1.0
        clicked = self.rates.clicked if decision.waits_for_click else 0.0
        replied = self.rates.replied if decision.waits_for_reply else 0.0
        if spot < clicked:
            return "clicked"
        if spot < clicked + replied:
            return "replied"
        return "otherwise"


@dataclass(frozen=True)
class Start:
    contact: Contact
    step_index: int
    base: datetime  # the time the step's delay counts from
    due: datetime | None = None  # already planned: its due time
    after: bool = False  # step_index was sent: the step after it (or its branch) comes next
    path: str = ""  # the branches this enrollment took so far


def starting_points(
    session: Session, sequence: Sequence, campaign: Campaign | None, start: datetime
) -> list[Start]:
    if campaign is None:
        contacts = session.scalars(
            select(Contact).where(Contact.id.in_(audience_query(sequence))).order_by(Contact.id)
        )
        return [Start(contact, 0, start) for contact in contacts]
    points = []
    rows = session.execute(
        select(Enrollment, Contact)
        .join(Contact, Contact.id == Enrollment.contact_id)
        .where(Enrollment.campaign_id == campaign.id, Enrollment.state == EnrollmentState.ACTIVE)
        .order_by(Enrollment.id)
    )
    for enrollment, contact in rows:
        if enrollment.planned_step < 0:
            base = max(enrollment.enrolled_at, campaign.starts_at or enrollment.enrolled_at)
            points.append(Start(contact, 0, max(base, start)))
            continue
        message = session.scalar(
            select(Message).where(
                Message.enrollment_id == enrollment.id,
                Message.step_index == enrollment.planned_step,
            )
        )
        if message is None:
            continue
        taken = enrollment.path or ""
        if message.state in SETTLED_STATES:
            base = message.sent_at or message.updated_at
            points.append(Start(contact, enrollment.planned_step, base, after=True, path=taken))
        else:
            due = max(message.due_at, start)
            points.append(Start(contact, enrollment.planned_step, due, due, path=taken))
    return points


def simulate(
    session: Session,
    sequence: Sequence,
    *,
    campaign: Campaign | None,
    start: datetime,
    days: float,
    quiet: QuietHours,
    sms_cap: timedelta,
    rates: BranchRates | None = None,
) -> list[Projected]:
    """The messages a campaign would send; `simulate_branches` also says who went which way."""
    rows, _ = simulate_branches(
        session, sequence, campaign=campaign, start=start, days=days, quiet=quiet,
        sms_cap=sms_cap, rates=rates,
    )  # fmt: skip
    return rows


def simulate_branches(
    session: Session,
    sequence: Sequence,
    *,
    campaign: Campaign | None,
    start: datetime,
    days: float,
    quiet: QuietHours,
    sms_cap: timedelta,
    rates: BranchRates | None = None,
) -> tuple[list[Projected], list[BranchShare]]:
    """The messages and each branch's share. `rates`: by default the campaign's own so far
    (observed_rates), else the assumed BranchRates()."""
    end = start + timedelta(days=days)
    chooser = _Chooser(rates or observed_rates(session, campaign) or BranchRates())
    paths = paths_of(sequence)
    decided: dict[str, set[int]] = {}
    suppressed = {
        (channel, digest)
        for channel, digest in session.execute(
            select(Suppression.channel, Suppression.address_hash).where(
                Suppression.lifted_at.is_(None)
            )
        )
    }
    projected: list[Projected] = []
    hasher = hasher_of(session)
    for point in starting_points(session, sequence, campaign, start):
        walk = _Walk(sequence, paths, chooser, point.contact.id, end, decided)
        projected.extend(_one_contact(point, walk, end, quiet, sms_cap, suppressed, hasher))
    projected.sort(key=lambda item: (item.at, item.step, item.contact_id))
    return projected, branch_shares(sequence, decided, chooser.rates)


@dataclass
class _Walk:
    """One contact's way through the sequence: which step follows, and the branches taken."""

    sequence: Sequence
    paths: Paths
    chooser: _Chooser
    contact_id: int
    end: datetime
    decided: dict[str, set[int]]  # "step:event" -> the contacts put on it within the horizon
    seen: set[int] = field(default_factory=set)

    def following(self, index: int, base: datetime) -> tuple[int | None, datetime, str]:
        """The step after `index` sent at `base`, when its delay counts from, and the branch
        taken ("" when the step has none). A step met again (a loop validate refuses) ends."""
        decision = self.paths.decisions[index]
        if decision is None:
            found, at, taken = self.paths.after(index), base, ""
        else:
            step = self.sequence.steps[index]
            event = self.chooser.choose(index, decision)
            within = step.then.within if step.then and event == "otherwise" else timedelta(0)
            found, at, taken = decision.target(event), base + within, f"{step.name}:{event}"
            if at <= self.end:
                self.decided.setdefault(taken, set()).add(self.contact_id)
        if found is not None and found in self.seen:
            return None, at, taken
        return found, at, taken


def _one_contact(
    point: Start,
    walk: _Walk,
    end: datetime,
    quiet: QuietHours,
    sms_cap: timedelta,
    suppressed: set[tuple[str, str]],
    hasher: SuppressionHasher,
) -> list[Projected]:
    contact, base, out = point.contact, point.base, []
    sequence, path = walk.sequence, point.path
    last_text: datetime | None = None
    rule = rule_for(contact.phone)
    texted: list[datetime] = []  # this campaign's texts so far, for the state rule's count
    if sequence.exit.booked and contact.booked_at is not None:
        return []
    index: int | None = point.step_index
    if point.after:
        walk.seen.add(point.step_index)
        index, base, taken = walk.following(point.step_index, base)
        path = ",".join(filter(None, (path, taken)))
    first = True
    while index is not None:
        walk.seen.add(index)
        step = sequence.steps[index]
        rules = quiet if step.channel == "sms" else None
        at = point.due if first and point.due else base + step.delay
        first = False
        due = next_allowed(at, contact.timezone, step.window, rules)
        if due is not None and step.channel == "sms" and last_text and sms_cap:
            if due < last_text + sms_cap:
                due = next_allowed(last_text + sms_cap, contact.timezone, step.window, rules)
        moved_by = ""
        if due is not None and step.channel == "sms" and rule is not None:
            strict = next_allowed_text(due, contact.timezone, step.window, quiet, rule, texted)
            moved_by = rule.state if strict != due else ""
            due = strict
        if due is None:
            out.append(
                Projected(base, step.name, step.channel, contact.id, "no send time", path=path)
            )
        elif due > end:
            break
        else:
            reason = (
                unreachable_because(
                    contact.consent_for(step.channel),
                    contact.address(step.channel),
                    step.channel,
                    lambda channel, address: (channel, hasher(channel, address)) in suppressed,
                )
                or ""
            )
            if not reason and step.channel == "sms":
                last_text = due
                texted.append(due)
            out.append(Projected(due, step.name, step.channel, contact.id, reason, moved_by, path))
            base = due
        index, base, taken = walk.following(index, base)
        path = ",".join(filter(None, (path, taken)))
    return out


@dataclass(frozen=True)
class BranchShare:
    """One way out of a branching step, as a projection expects it."""

    step: str
    event: str  # clicked, replied, otherwise
    target: str  # a step's name, or "end"
    share: float  # of the contacts reaching the step
    contacts: int  # projected on it within the horizon
    source: str = "assumed"  # where the share comes from (BranchRates.source)


def branch_shares(
    sequence: Sequence, decided: dict[str, set[int]], rates: BranchRates
) -> list[BranchShare]:
    """Each way out of each branching step: its expected share, and the contacts the
    projection put on it (those whose branch is decided within the horizon)."""
    out: list[BranchShare] = []
    for step in sequence.steps:
        if step.then is None:
            continue
        ways = step.then.targets()
        shares = {
            "clicked": rates.clicked if "clicked" in ways else 0.0,
            "replied": rates.replied if "replied" in ways else 0.0,
        }
        shares["otherwise"] = max(0.0, 1.0 - shares["clicked"] - shares["replied"])
        for event, target in ways.items():
            count = len(decided.get(f"{step.name}:{event}", ()))
            share = shares[event]
            out.append(BranchShare(step.name, event, target, share, count, rates.source))
    return out


def branch_lines(sequence: Sequence, shares: list[BranchShare]) -> list[str]:
    """One line per branching step: each way, its share and the contacts projected on it."""
    lines = []
    for step in sequence.steps:
        if step.then is None:
            continue
        ways = "; ".join(
            f"{way.event} {way.share:.0%} -> {way.target} ({way.contacts:,} "
            f"contact{'' if way.contacts == 1 else 's'})"
            for way in shares
            if way.step == step.name
        )
        source = next((way.source for way in shares if way.step == step.name), "")
        lines.append(
            f"after {step.name}, within {span(step.then.within)}: {ways} (shares {source})"
        )
    return lines
