"""The full 7-day projection of a campaign (scheduler.simulate: the planner's windows, TCPA quiet
hours, consent, suppressions and SMS frequency cap), on demand, sending nothing.

The campaign page shows the planned rows, which is cheap at any size; this page walks every
contact in Python, so it is offered up to PROJECTION_LIMIT contacts and otherwise points to
`nurture campaigns simulate`, which has no request timeout to respect.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import func, select

from campaigns.audience import audience_size_query
from scheduler.planner import quiet_hours
from scheduler.simulate import Projected, simulate
from storage.models import CampaignState, Enrollment, EnrollmentState
from web.admin.campaign_pages import CampaignName, find_campaign
from web.admin.render import render
from web.admin.session import StaffReader
from web.services import WebServices

router = APIRouter()
PROJECTION_LIMIT = 20_000
LISTED = 200


@dataclass
class ProjectedDay:
    day: date
    sends: Counter[str] = field(default_factory=Counter)  # by step name
    skips: Counter[str] = field(default_factory=Counter)  # by reason


def by_day(rows: list[Projected], zone: str) -> list[ProjectedDay]:
    tz = ZoneInfo(zone)
    days: dict[date, ProjectedDay] = {}
    for row in rows:
        day = row.at.astimezone(tz).date()
        entry = days.setdefault(day, ProjectedDay(day))
        if row.skipped:
            entry.skips[f"{row.step}: {row.skipped}"] += 1
        else:
            entry.sends[row.step] += 1
    return [days[day] for day in sorted(days)]


@router.get("/campaigns/{name}/projection")
def projection_page(
    request: Request,
    name: CampaignName,
    staff: StaffReader,
    days: Annotated[int, Query(ge=1, le=31)] = 7,
) -> Response:
    nurture: WebServices = request.app.state.nurture
    settings = nurture.settings
    zone = settings.clinic.default_timezone
    now = nurture.clock()
    rows: list[Projected] = []
    with nurture.sessions() as session:
        row = find_campaign(session, name)
        campaign = row.campaign
        running = campaign if campaign and campaign.state != CampaignState.CANCELLED else None
        if running is not None:
            population = session.scalar(
                select(func.count()).where(
                    Enrollment.campaign_id == running.id,
                    Enrollment.state == EnrollmentState.ACTIVE,
                )
            )
        elif row.sequence is not None and campaign is None:
            population = session.scalar(audience_size_query(row.sequence))
        else:
            population = 0
        too_large = (population or 0) > PROJECTION_LIMIT
        if row.sequence is not None and population and not too_large:
            start = max(now, running.starts_at or now) if running else now
            rows = simulate(
                session,
                row.sequence,
                campaign=running,
                start=start,
                days=days,
                quiet=quiet_hours(settings),
                sms_cap=timedelta(hours=settings.scheduler.sms_frequency_cap_hours),
            )
    return render(
        request,
        "projection.html",
        staff,
        row=row,
        days=days,
        population=population or 0,
        too_large=too_large,
        limit=PROJECTION_LIMIT,
        per_day=by_day(rows, zone),
        listed=rows[:LISTED],
        total=len(rows),
        would_send=sum(1 for item in rows if not item.skipped),
        tz=ZoneInfo(zone),
        nav="campaigns",
        generated=now,
    )
