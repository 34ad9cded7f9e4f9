"""Moving a running campaign to its sequence's newest content version.

Only steps not yet planned take the new version: every message already planned keeps the
version it was planned with (stamped by the planner; any without a stamp are stamped here, in
the same transaction as the re-pin), and the planner plans later steps from the new definition,
which the dispatcher renders with the new files (campaigns.content_render.version_of). So an
upgrade never changes a message already planned, and the count it reports, before anything
changes, is the contacts still in the sequence with a step left to plan: those the new version
reaches.

A step already planned for someone must keep its place, name and channel in the new version
(the planner and the send re-checks find a message's step by its index); the new version may
change any step's words and settings, and add or remove steps after the ones planned.

The planner stamps each message with the version whose definition it planned from (read with
it, once per tick), so a tick that began before an upgrade and plans with the old definition
stamps the old version, and the message renders as it was planned. (A message planned before
stamping existed renders with its campaign's pin; the dispatcher fails one whose step in that
version is missing or on another channel, never sending it where its consent was not checked.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from campaigns.content_render import ensure_valid_version
from campaigns.content_store import current_version, sequence_of
from campaigns.lifecycle import get_campaign
from core.errors import InputError
from core.settings import Settings
from storage.models import (
    IN_SEQUENCE,
    Campaign,
    CampaignState,
    ContentVersion,
    Enrollment,
    Message,
)


@dataclass(frozen=True)
class UpgradePlan:
    """What `upgrade` would do (or did): from which version to which, and whom it reaches."""

    campaign: str
    sequence: str
    from_number: int
    to_number: int
    #: contacts still in the sequence with a step not yet planned, who get the new version
    contacts_touched: int
    #: the note of each version skipped over or reached ("v2: changed 01-welcome.html")
    changes: tuple[str, ...]

    def describe(self) -> str:
        return (
            f"{self.campaign}: version {self.from_number} -> {self.to_number}; "
            f"{self.contacts_touched} contact(s) get the new version for steps not yet planned"
        )


def plan_upgrade(session: Session, name: str) -> UpgradePlan:
    """What upgrading campaign `name` would do; InputError when it cannot (see the module)."""
    campaign, pinned, newest = _versions(session, name)
    planned = _furthest_planned(session, campaign)
    _check_planned_steps_kept(pinned, newest, planned)
    last = len(newest.definition["steps"]) - 1
    touched = session.scalar(
        select(func.count(func.distinct(Enrollment.contact_id))).where(
            Enrollment.campaign_id == campaign.id,
            Enrollment.state.in_([str(state) for state in IN_SEQUENCE]),
            Enrollment.planned_step < last,
        )
    )
    notes = session.execute(
        select(ContentVersion.number, ContentVersion.note)
        .where(
            ContentVersion.sequence == pinned.sequence,
            ContentVersion.number > pinned.number,
            ContentVersion.number <= newest.number,
        )
        .order_by(ContentVersion.number)
    )
    return UpgradePlan(
        campaign=campaign.name,
        sequence=pinned.sequence,
        from_number=pinned.number,
        to_number=newest.number,
        contacts_touched=touched or 0,
        changes=tuple(f"v{number}: {note}" for number, note in notes),
    )


def upgrade(session: Session, name: str, *, now: datetime, settings: Settings) -> UpgradePlan:
    """Re-pin campaign `name` to its sequence's newest version, checked by the launch rules;
    messages planned before keep the version they were planned with."""
    plan = plan_upgrade(session, name)
    campaign, pinned, newest = _versions(session, name)
    ensure_valid_version(session, newest, settings)
    session.execute(
        update(Message)
        .where(Message.campaign_id == campaign.id, Message.content_version_id.is_(None))
        .values(content_version_id=pinned.id, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    campaign.content_version_id = newest.id
    campaign.definition = sequence_of(newest).snapshot()
    session.flush()
    return plan


def _versions(session: Session, name: str) -> tuple[Campaign, ContentVersion, ContentVersion]:
    campaign = get_campaign(session, name)
    if campaign.state not in (CampaignState.ACTIVE, CampaignState.PAUSED):
        raise InputError(f"campaign {name!r} is {campaign.state}: only a running one moves on")
    if campaign.content_version_id is None:
        raise InputError(
            f"campaign {name!r} was launched from files, before content versions: it keeps them"
        )
    pinned = session.get(ContentVersion, campaign.content_version_id)
    assert pinned is not None  # a foreign key
    newest = current_version(session, pinned.sequence)
    if newest.id == pinned.id:
        raise InputError(
            f"campaign {name!r} already runs the newest version of {pinned.sequence} "
            f"(version {pinned.number})"
        )
    return campaign, pinned, newest


def _furthest_planned(session: Session, campaign: Campaign) -> int:
    """The highest step index any of the campaign's messages was planned for (-1: none)."""
    found = session.scalar(
        select(func.max(Message.step_index)).where(Message.campaign_id == campaign.id)
    )
    return -1 if found is None else found


def _check_planned_steps_kept(old: ContentVersion, new: ContentVersion, planned: int) -> None:
    before, after = old.definition["steps"], new.definition["steps"]
    for index in range(planned + 1):
        was = before[index]
        now = after[index] if index < len(after) else None
        if now is None or (now["name"], now["channel"]) != (was["name"], was["channel"]):
            raise InputError(
                f"step {index + 1} ({was['name']}, {was['channel']}) is already planned for some "
                f"contacts, so version {new.number} must keep it in its place with its name and "
                "channel; add or remove steps after it only"
            )
