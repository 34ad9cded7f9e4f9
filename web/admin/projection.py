"""The full 7-day projection of a campaign (scheduler.projection, the one `nurture campaigns
simulate` prints: the planner's windows, TCPA quiet hours, consent, suppressions and SMS frequency
cap), on demand, sending nothing.

The campaign page shows the planned rows, which is cheap at any size; this page walks every
contact in Python, so it is offered up to PROJECTION_LIMIT contacts and otherwise points to
`nurture campaigns simulate`, which has no request timeout to respect.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from scheduler.projection import Projection, project
from scheduler.simulate import Projected, branch_lines
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
    zone = nurture.settings.clinic.default_timezone
    now = nurture.clock()
    with nurture.sessions() as session:
        row = find_campaign(session, name, now=now)
        if row.sequence is None:  # a definition file that does not load: its problem is shown
            result = Projection(row.state, now, 0)
        else:
            result = project(
                session,
                row.sequence,
                row.campaign,
                settings=nurture.settings,
                now=now,
                days=days,
                limit=PROJECTION_LIMIT,
            )
    rows = result.rows
    return render(
        request,
        "projection.html",
        staff,
        row=row,
        days=days,
        population=result.population,
        too_large=result.too_large,
        limit=PROJECTION_LIMIT,
        per_day=by_day(rows, zone),
        listed=rows[:LISTED],
        total=len(rows),
        would_send=result.would_send,
        branches=branch_lines(row.sequence, result.branches) if row.sequence else [],
        tz=ZoneInfo(zone),
        nav="campaigns",
        generated=now,
    )
