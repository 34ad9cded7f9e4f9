"""The dashboard's home figures: each running campaign's sends, clicks and bookings over the
last seven days, and the messages waiting for a worker.

Counted as the campaign page counts them (campaigns.reports: a send is a message the provider
accepted, `sent_at`; clicks and bookings are events credited to the campaign), over a rolling
window of 7 x 24 hours, which reads the same on any weekday and across a DST change. Three
grouped statements, each a range over an index that starts with the campaign id
(ix_message_campaign_sent, ix_event_campaign_kind, ix_message_campaign), so the page reads the
index entries of the running campaigns and never scans a table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import Campaign, CampaignState, Event, Message, MessageState

WEEK = timedelta(days=7)
RUNNING = (CampaignState.ACTIVE, CampaignState.PAUSED)
WAITING = (MessageState.PLANNED, MessageState.CLAIMED)


@dataclass
class RunningCampaign:
    name: str
    title: str
    state: str  # active or paused
    sent: int = 0
    clicked: int = 0
    booked: int = 0
    planned: int = 0  # waiting for their time (or a send window)
    claimed: int = 0  # taken by a worker, being checked and sent


@dataclass(frozen=True)
class Overview:
    since: datetime
    campaigns: list[RunningCampaign]

    @property
    def planned(self) -> int:
        return sum(row.planned for row in self.campaigns)

    @property
    def claimed(self) -> int:
        return sum(row.claimed for row in self.campaigns)

    @property
    def size(self) -> int:
        """What the figures read: how the report cache decides to keep them (report_cache)."""
        return sum(row.sent + row.planned + row.claimed for row in self.campaigns)


def overview(session: Session, *, now: datetime) -> Overview:
    since = now - WEEK
    rows = session.execute(
        select(Campaign.id, Campaign.name, Campaign.state, Campaign.definition)
        .where(Campaign.state.in_(RUNNING))
        .order_by(Campaign.launched_at.desc(), Campaign.id.desc())
    ).all()
    running = {
        row.id: RunningCampaign(row.name, str(row.definition.get("title") or row.name), row.state)
        for row in rows
    }
    ids = list(running)
    if not ids:
        return Overview(since, [])
    for campaign_id, count in session.execute(
        select(Message.campaign_id, func.count())
        .where(Message.campaign_id.in_(ids), Message.sent_at >= since, Message.sent_at <= now)
        .group_by(Message.campaign_id)
    ):
        running[campaign_id].sent = count
    for credited_to, kind, count in session.execute(
        select(Event.campaign_id, Event.kind, func.count())
        .where(
            Event.campaign_id.in_(ids),
            Event.kind.in_(("clicked", "booked")),
            Event.occurred_at >= since,
            Event.occurred_at <= now,
        )
        .group_by(Event.campaign_id, Event.kind)
    ):
        if credited_to is not None:  # always, by the IN above; the column allows NULL
            setattr(running[credited_to], kind, count)
    for campaign_id, state, count in session.execute(
        select(Message.campaign_id, Message.state, func.count())
        .where(Message.campaign_id.in_(ids), Message.state.in_(WAITING))
        .group_by(Message.campaign_id, Message.state)
    ):
        setattr(running[campaign_id], str(state), count)
    return Overview(since, list(running.values()))
