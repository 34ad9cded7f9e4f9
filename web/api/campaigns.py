"""/api/v1/campaigns/{name}/funnel: the funnel staff see, from campaigns.reports."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Path, Request
from sqlalchemy import select

from campaigns.reports import campaign_funnel
from storage.models import Campaign
from web.api.access import Reader
from web.api.problems import Problem, ProblemRoute, documented
from web.api.schemas import BranchOut, FunnelOut, StageOut, StepOut
from web.services import WebServices

router = APIRouter(route_class=ProblemRoute, tags=["campaigns"])
CampaignName = Annotated[str, Path(min_length=1, max_length=100)]


@router.get(
    "/campaigns/{name}/funnel",
    summary="A campaign's funnel: people enrolled down to bookings, and each step's figures",
    response_model=FunnelOut,
    responses=documented(401, 403, 404, 422, 429),
)
def funnel(request: Request, holder: Reader, name: CampaignName) -> FunnelOut:
    nurture: WebServices = request.app.state.nurture
    with nurture.sessions() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.name == name))
        if campaign is None:
            raise Problem(404, "no campaign by that name")
        figures = campaign_funnel(session, campaign)
    fields = asdict(figures)
    return FunnelOut(
        **{key: value for key, value in fields.items() if key in FunnelOut.model_fields
           and key not in ("stages", "steps", "branches")},
        stages=[
            StageOut(stage=stage, people=people, share=figures.share(stage))
            for stage, people in figures.stages()
        ],
        steps=[StepOut(**asdict(step)) for step in figures.steps],
        branches=[
            BranchOut(**asdict(branch), share=branch.share) for branch in figures.branches
        ],
    )  # fmt: skip
