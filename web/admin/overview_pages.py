"""The dashboard's home (/admin/): running campaigns with their sends, clicks and bookings of
the last seven days, the messages waiting, and what needs a person, each linking to its page.

The figures are campaigns.overview's (grouped index reads, kept for a while by the report cache
when they are large); what needs attention is scheduler.attention's own list, as the attention
page shows it, and reviews waiting for an owner come from campaigns.review."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from campaigns.overview import Overview, overview
from campaigns.review import PENDING
from scheduler.attention import needing_attention
from scheduler.backlog import due_backlog
from scheduler.settle import checked_automatically
from storage.models import LaunchReview
from web.admin.render import render
from web.admin.report_cache import report_cache
from web.admin.scheduler_status import current_scheduler_status
from web.admin.session import StaffReader
from web.services import WebServices

router = APIRouter()
SHOWN_PROBLEMS = 5


@router.get("/")
def home(request: Request, staff: StaffReader) -> Response:
    nurture: WebServices = request.app.state.nurture
    now = nurture.clock()
    fresh = request.query_params.get("fresh") == "1"

    def compute() -> tuple[Overview, int]:
        figures = overview(session, now=now)
        return figures, figures.size

    with nurture.sessions() as session:
        figures = report_cache(request).get(("overview",), compute, now=now, fresh=fresh)
        problems = needing_attention(
            session, checked_automatically=checked_automatically(nurture.settings)
        )
        reviews = list(
            session.scalars(
                select(LaunchReview.sequence)
                .where(LaunchReview.decision == PENDING)
                .order_by(LaunchReview.id)
                .limit(20)
            )
        )
        stalled = (
            None if current_scheduler_status(request).running else due_backlog(session, now=now)
        )
    return render(
        request,
        "overview.html",
        staff,
        figures=figures,
        week=figures.value,
        problems=problems[:SHOWN_PROBLEMS],
        problem_count=len(problems),
        reviews=list(dict.fromkeys(reviews)),
        stalled=stalled,
        nav="overview",
    )
