"""The one state of a campaign that staff see, for the CLI and the dashboard alike.

The row keeps what staff decided (draft, active, paused, cancelled); "finished" is derived from
the enrollments and messages, never kept as a cursor, so a resume can never re-send what was sent
(listmonk's cursor lost and repeated sends: #3022, #2070). A definition file with no campaign row
is "not launched".
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import (
    IN_SEQUENCE,
    Campaign,
    CampaignState,
    Enrollment,
    Message,
    MessageState,
)

#: A message in one of these states may still be sent.
OPEN_STATES = (MessageState.PLANNED, MessageState.CLAIMED, MessageState.SENDING)


class CampaignStatus(enum.StrEnum):
    NOT_LAUNCHED = "not launched"
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    FINISHED = "finished"  # active, started, and nobody left to send anything to

    @property
    def launchable(self) -> bool:
        return self in (CampaignStatus.NOT_LAUNCHED, CampaignStatus.DRAFT)

    @property
    def pausable(self) -> bool:
        """A finished campaign can still be paused or cancelled: with `enroll_new_contacts`
        the planner keeps enrolling new contacts into it."""
        return self in (CampaignStatus.ACTIVE, CampaignStatus.FINISHED)

    @property
    def resumable(self) -> bool:
        return self == CampaignStatus.PAUSED

    @property
    def cancellable(self) -> bool:
        return self in (CampaignStatus.ACTIVE, CampaignStatus.PAUSED, CampaignStatus.FINISHED)

    @property
    def walks_enrollments(self) -> bool:
        """What a projection follows: the enrollments of a launched campaign (paused: as if
        resumed now), or the audience of one not launched yet. A cancelled one sends nothing."""
        return self in (CampaignStatus.ACTIVE, CampaignStatus.PAUSED, CampaignStatus.FINISHED)


def campaign_statuses(
    session: Session, campaigns: Iterable[Campaign], *, now: datetime
) -> dict[int, CampaignStatus]:
    """The status of each campaign by id, in three grouped reads whatever their number."""
    rows = list(campaigns)
    candidates = [
        c
        for c in rows
        if c.state == CampaignState.ACTIVE and c.starts_at is not None and c.starts_at <= now
    ]
    enrolled, busy = _activity(session, [c.id for c in candidates])
    statuses = {c.id: CampaignStatus(str(c.state)) for c in rows}
    for campaign in candidates:
        if campaign.id in enrolled and campaign.id not in busy:
            statuses[campaign.id] = CampaignStatus.FINISHED
    return statuses


def campaign_status(
    session: Session, campaign: Campaign | None, *, now: datetime
) -> CampaignStatus:
    if campaign is None:
        return CampaignStatus.NOT_LAUNCHED
    return campaign_statuses(session, [campaign], now=now)[campaign.id]


def _activity(session: Session, ids: list[int]) -> tuple[set[int], set[int]]:
    """Campaigns that enrolled anyone, and those with someone active or a message still open."""
    if not ids:
        return set(), set()
    enrolled: set[int] = set()
    busy: set[int] = set()
    for campaign_id, state in session.execute(
        select(Enrollment.campaign_id, Enrollment.state)
        .where(Enrollment.campaign_id.in_(ids))
        .group_by(Enrollment.campaign_id, Enrollment.state)
    ):
        enrolled.add(campaign_id)
        if state in IN_SEQUENCE:
            busy.add(campaign_id)
    busy.update(
        session.scalars(
            select(Message.campaign_id)
            .where(
                Message.campaign_id.in_(ids),
                Message.state.in_([str(state) for state in OPEN_STATES]),
            )
            .group_by(Message.campaign_id)
        )
    )
    return enrolled, busy
