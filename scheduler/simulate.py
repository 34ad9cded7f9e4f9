"""What a campaign would send, and when, over the next days: the planner's rules, sending nothing.

The same windows, TCPA quiet hours, consent, suppressions and SMS frequency cap as the engine,
applied to the audience as it is now (a campaign not yet launched) or to each active enrollment
from where it stands (a running campaign). Each step is assumed sent at its due time, so the
projection is what would happen if every send succeeded on time.

Texts to Florida, Oklahoma and Maryland numbers follow their state rule (contacts.state_rules:
08:00-20:00 local, three a day) through the engine's one function (scheduler.windows.
next_allowed_text); a text the rule moves later says so (`Projected.state_rule`). Only this
campaign's texts are counted: other campaigns' texts to the same contact may move it further.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.audience import audience_query
from campaigns.definitions import Sequence
from contacts.state_rules import rule_for
from contacts.suppressions import hasher_of
from core.suppression_hash import SuppressionHasher
from scheduler.windows import QuietHours, next_allowed, next_allowed_text
from storage.models import (
    SETTLED_STATES,
    Campaign,
    ConsentStatus,
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


@dataclass(frozen=True)
class Start:
    contact: Contact
    step_index: int
    base: datetime  # the time the step's delay counts from
    due: datetime | None = None  # already planned: its due time


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
        if message.state in SETTLED_STATES:
            base = message.sent_at or message.updated_at
            points.append(Start(contact, enrollment.planned_step + 1, base))
        else:
            due = max(message.due_at, start)
            points.append(Start(contact, enrollment.planned_step, due, due))
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
) -> list[Projected]:
    end = start + timedelta(days=days)
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
        projected.extend(_one_contact(point, sequence, end, quiet, sms_cap, suppressed, hasher))
    projected.sort(key=lambda item: (item.at, item.step, item.contact_id))
    return projected


def _one_contact(
    point: Start,
    sequence: Sequence,
    end: datetime,
    quiet: QuietHours,
    sms_cap: timedelta,
    suppressed: set[tuple[str, str]],
    hasher: SuppressionHasher,
) -> list[Projected]:
    contact, base, out = point.contact, point.base, []
    last_text: datetime | None = None
    rule = rule_for(contact.phone)
    texted: list[datetime] = []  # this campaign's texts so far, for the state rule's count
    if sequence.exit.booked and contact.booked_at is not None:
        return []
    for index in range(point.step_index, len(sequence.steps)):
        step = sequence.steps[index]
        rules = quiet if step.channel == "sms" else None
        at = point.due if index == point.step_index and point.due else base + step.delay
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
            out.append(Projected(base, step.name, step.channel, contact.id, "no send time"))
            continue
        if due > end:
            break
        address = contact.address(step.channel)
        reason = ""
        if address is None or contact.consent_for(step.channel) != ConsentStatus.OPTED_IN:
            reason = f"no {step.channel} consent"
        elif (step.channel, hasher(step.channel, address)) in suppressed:
            reason = "suppressed"
        elif step.channel == "sms":
            last_text = due
            texted.append(due)
        out.append(Projected(due, step.name, step.channel, contact.id, reason, moved_by))
        base = due
    return out
