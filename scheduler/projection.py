"""One projection of a campaign for the CLI (`campaigns simulate`) and the dashboard alike.

Which contacts it follows comes from the campaign's one status (campaigns.state): a launched
campaign's active enrollments (a paused one as if resumed now), the audience of one not launched
yet, nobody for a cancelled one. It starts at the campaign's own start when that is later than
asked. The rules per contact are the planner's (scheduler.simulate).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.audience import audience_size_query
from campaigns.definitions import Sequence
from campaigns.state import CampaignStatus, campaign_status
from core.settings import Settings
from scheduler.planner import quiet_hours
from scheduler.simulate import (
    BranchRates,
    BranchShare,
    Projected,
    branch_shares,
    simulate_branches,
)
from storage.models import Campaign, Enrollment, EnrollmentState


@dataclass(frozen=True)
class Projection:
    status: CampaignStatus
    start: datetime
    population: int  # the contacts it follows
    too_large: bool = False  # more than the caller's limit: not walked
    rows: list[Projected] = field(default_factory=list)
    #: each way out of each branching step, with its expected share (scheduler.simulate)
    branches: list[BranchShare] = field(default_factory=list)

    @property
    def would_send(self) -> int:
        return sum(1 for row in self.rows if not row.skipped)


def project(
    session: Session,
    sequence: Sequence,
    campaign: Campaign | None,
    *,
    settings: Settings,
    now: datetime,
    days: float,
    start: datetime | None = None,
    limit: int | None = None,
    rates: BranchRates | None = None,
) -> Projection:
    """What `campaign` (or `sequence`, not launched) would send over `days` from `start`."""
    status = campaign_status(session, campaign, now=now)
    begin = start or now
    following = campaign if campaign is not None and status.walks_enrollments else None
    if following is not None:
        begin = max(begin, following.starts_at or begin)
        population = session.scalar(
            select(func.count()).where(
                Enrollment.campaign_id == following.id,
                Enrollment.state == EnrollmentState.ACTIVE,
            )
        )
    elif status.launchable:
        population = session.scalar(audience_size_query(sequence))
    else:
        population = 0
    population = population or 0
    shares = branch_shares(sequence, {}, rates or BranchRates())  # nobody walked: the shares
    if limit is not None and population > limit:
        return Projection(status, begin, population, too_large=True, branches=shares)
    if not population:
        return Projection(status, begin, 0, branches=shares)
    rows, branches = simulate_branches(
        session,
        sequence,
        campaign=following,
        start=begin,
        days=days,
        quiet=quiet_hours(settings),
        sms_cap=timedelta(hours=settings.scheduler.sms_frequency_cap_hours),
        rates=rates,
    )
    return Projection(status, begin, population, rows=rows, branches=branches)
