"""Campaigns: the list, one campaign's page (sequence, audience, funnel, schedule), and the
launch / pause / resume / cancel buttons, which call campaigns.lifecycle like the CLI does
(a launch through campaigns.review's rule; the review buttons are web.admin.review_pages)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import lifecycle, review
from campaigns.audience import audience_size_query
from campaigns.content_store import launchable, sequence_names
from campaigns.definitions import Sequence, list_sequences
from campaigns.reports import (
    DAILY_SERIES,
    CampaignCounts,
    CampaignFunnel,
    DailyPoint,
    UpcomingDay,
    campaign_counts,
    campaign_funnel,
    daily_series,
    funnel_csv,
    upcoming,
)
from campaigns.state import CampaignStatus, campaign_status, campaign_statuses
from core.errors import NotFound, NurtureError, ValidationFailed
from scheduler.backlog import due_backlog
from storage.db import transaction
from storage.models import Campaign, ContentVersion
from web.admin.charts import daily_svg, funnel_svg
from web.admin.formatting import describe_delay, describe_window, parse_start
from web.admin.render import render
from web.admin.report_cache import report_cache
from web.admin.review_panel import review_panel, upgrade_panel
from web.admin.scheduler_status import current_scheduler_status
from web.admin.session import Staff, StaffEditor, StaffNotFound, StaffReader
from web.services import WebServices

router = APIRouter()
CampaignName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=100)]
REPORT_DAYS = 30


@dataclass
class CampaignRow:
    name: str
    title: str
    state: CampaignStatus
    campaign: Campaign | None
    sequence: Sequence | None
    problem: str | None = None
    #: the stored version the sequence is read from: a campaign's pin, else the current one
    version: ContentVersion | None = None


def _nurture(request: Request) -> WebServices:
    services: WebServices = request.app.state.nurture  # Starlette's State is untyped
    return services


def _to_launch(
    session: Session, name: str
) -> tuple[Sequence | None, ContentVersion | None, str | None]:
    """What a launch of `name` reads (campaigns.content_store.launchable: the stored current
    version, else the definition file), or why it does not load; NotFound when neither exists."""
    try:
        sequence, version = launchable(session, name)
    except NotFound:
        raise
    except NurtureError as exc:
        return None, None, str(exc)
    return sequence, version, None


def find_definition(session: Session, name: str) -> CampaignRow:
    """The launched campaign, its snapshot and pinned version; else what a launch would read
    (without the campaign's status: find_campaign adds it). StaffNotFound when nothing is
    named `name`."""
    campaign = session.scalar(select(Campaign).where(Campaign.name == name))
    if campaign is not None:
        pinned = campaign.content_version_id
        version = session.get(ContentVersion, pinned) if pinned is not None else None
        sequence = Sequence.from_snapshot(campaign.definition)
        return CampaignRow(
            name, sequence.title, CampaignStatus.NOT_LAUNCHED, campaign, sequence, None, version
        )
    try:
        found, version, problem = _to_launch(session, name)
    except NotFound:
        raise StaffNotFound("no such campaign") from None
    title = found.title if found else name
    return CampaignRow(name, title, CampaignStatus.NOT_LAUNCHED, None, found, problem, version)


def find_campaign(session: Session, name: str, *, now: datetime) -> CampaignRow:
    row = find_definition(session, name)
    row.state = campaign_status(session, row.campaign, now=now)
    return row


def _list_counts(session: Session) -> tuple[dict[int, CampaignCounts], int]:
    counts = campaign_counts(session)
    return counts, sum(row.enrolled for row in counts.values())


@router.get("/campaigns")
def campaign_list(request: Request, staff: StaffReader) -> Response:
    nurture = _nurture(request)
    now = nurture.clock()
    with nurture.sessions() as session:
        launched = list(session.scalars(select(Campaign).order_by(Campaign.created_at.desc())))
        statuses = campaign_statuses(session, launched, now=now)
        counts = report_cache(request).get(("list",), lambda: _list_counts(session), now=now).value
        rows = [
            CampaignRow(c.name, Sequence.from_snapshot(c.definition).title, statuses[c.id], c, None)
            for c in launched
        ]
        # Sequences not launched: each stored one (made in the editor too), and any file the
        # store lacks, read as a launch reads it (find_definition).
        names = {row.name for row in rows}
        for name in sorted(set(list_sequences()) | set(sequence_names(session))):
            if name not in names:
                rows.append(find_definition(session, name))
    return render(request, "campaigns.html", staff, rows=rows, counts=counts, nav="campaigns")


@router.get("/campaigns/{name}")
def campaign_page(request: Request, name: CampaignName, staff: StaffReader) -> Response:
    return _campaign_page(request, name, staff)


@dataclass(frozen=True)
class CampaignReport:
    funnel: CampaignFunnel
    series: list[DailyPoint]
    upcoming: list[UpcomingDay]


def _report(
    session: Session, campaign: Campaign, now: datetime, zone: str
) -> tuple[CampaignReport, int]:
    funnel = campaign_funnel(session, campaign)
    report = CampaignReport(
        funnel,
        daily_series(session, campaign.id, end=now, days=REPORT_DAYS, zone=zone),
        upcoming(session, campaign.id, now=now, days=7, zone=zone),
    )
    return report, funnel.enrolled


def _campaign_page(
    request: Request, name: str, staff: Staff, *, error: str | None = None, status_code: int = 200
) -> Response:
    nurture = _nurture(request)
    zone = nurture.settings.clinic.default_timezone
    now = nurture.clock()
    fresh = request.query_params.get("fresh") == "1"
    context: dict[str, object] = {}
    with nurture.sessions() as session:
        row = find_campaign(session, name, now=now)
        campaign = row.campaign
        if row.sequence is not None and row.state.launchable:
            # Before launch only: afterwards the enrollments are the audience (no contacts scan).
            context["audience_size"] = session.scalar(audience_size_query(row.sequence))
            context["review"] = review_panel(
                session, row.sequence, row.version, staff, nurture.settings
            )
        elif campaign is not None and (row.state.pausable or row.state.resumable):
            context.update(upgrade_panel(session, name, row.version, staff, nurture.settings))
        if campaign is not None:
            figures = report_cache(request).get(
                ("campaign", campaign.id, row.state),
                lambda: _report(session, campaign, now, zone),
                now=now,
                fresh=fresh,
            )
            report: CampaignReport = figures.value
            context.update(
                figures=figures,
                funnel=report.funnel,
                series=report.series,
                upcoming=report.upcoming,
                funnel_chart=funnel_svg(report.funnel.stages(), title=f"Funnel of {name}"),
                daily_chart=daily_svg(
                    report.series, DAILY_SERIES, title=f"{name}: the last {REPORT_DAYS} days"
                ),
            )
            if row.state.pausable and not current_scheduler_status(request).running:
                # Launched and moving, but nothing will plan or send it: say so here.
                context["stalled"] = due_backlog(session, now=now, campaign_id=campaign.id)
    default_start = now.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")
    return render(
        request,
        "campaign.html",
        staff,
        status_code=status_code,
        row=row,
        error=error,
        default_start=default_start,
        describe_delay=describe_delay,
        describe_window=describe_window,
        report_days=REPORT_DAYS,
        nav="campaigns",
        **context,
    )


@router.post("/campaigns/{name}/launch")
def launch(
    request: Request,
    staff: StaffEditor,
    name: CampaignName,
    starts_at: str = Form("", max_length=40),
) -> Response:
    nurture = _nurture(request)
    now = nurture.clock()
    try:
        start = parse_start(starts_at, nurture.settings.clinic.default_timezone, now)
        who = review.Reviewer(staff.email, staff.role)
        with transaction(nurture.sessions) as session:
            sequence, version = launchable(session, name)  # the stored current version, pinned
            review.launch(
                session,
                sequence,
                who,
                now=now,
                starts_at=start,
                settings=nurture.settings,
                version=version,
            )
    except ValidationFailed as exc:
        problems = "; ".join(exc.problems)
        message = f"This sequence cannot be launched: {problems}"
        return _campaign_page(request, name, staff, error=message, status_code=400)
    except (ValueError, NurtureError) as exc:
        return _campaign_page(request, name, staff, error=str(exc), status_code=400)
    return RedirectResponse(f"/admin/campaigns/{name}?done=launched", status_code=303)


def _change(request: Request, name: str, staff: Staff, action: str) -> Response:
    nurture = _nurture(request)
    now = nurture.clock()
    try:
        with transaction(nurture.sessions) as session:
            if action == "paused":
                lifecycle.pause(session, name, now=now)
            elif action == "resumed":
                lifecycle.resume(session, name)
            else:
                lifecycle.cancel(session, name, now=now)
    except NurtureError as exc:
        return _campaign_page(request, name, staff, error=str(exc), status_code=400)
    return RedirectResponse(f"/admin/campaigns/{name}?done={action}", status_code=303)


@router.post("/campaigns/{name}/pause")
def pause(request: Request, name: CampaignName, staff: StaffEditor) -> Response:
    return _change(request, name, staff, "paused")


@router.post("/campaigns/{name}/resume")
def resume(request: Request, name: CampaignName, staff: StaffEditor) -> Response:
    return _change(request, name, staff, "resumed")


@router.post("/campaigns/{name}/cancel")
def cancel(request: Request, name: CampaignName, staff: StaffEditor) -> Response:
    return _change(request, name, staff, "cancelled")


@router.get("/campaigns/{name}/report.csv")
def report_csv(request: Request, name: CampaignName, staff: StaffReader) -> Response:
    nurture = _nurture(request)
    zone = nurture.settings.clinic.default_timezone
    with nurture.sessions() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.name == name))
        if campaign is None:
            raise StaffNotFound("this campaign has not been launched")
        funnel = campaign_funnel(session, campaign)
        series = daily_series(
            session, campaign.id, end=nurture.clock(), days=REPORT_DAYS, zone=zone
        )
    stamp = nurture.clock().strftime("%Y%m%d")
    return Response(
        funnel_csv(funnel, series),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}-report-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )
