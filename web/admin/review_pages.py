"""Review before launch on a campaign's page: an editor asks for review, an owner approves or
sends back, and what the launch button will do is said beside it; a running campaign moves to
its sequence's newest version by the same rule (campaigns.review.upgrade). The rule is
campaigns.review, the same as the CLI's; these routes only carry the staff member's email and
role to it."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from campaigns import review
from campaigns.content_store import launchable
from core.errors import NurtureError, ValidationFailed
from storage.db import transaction
from web.admin.campaign_pages import CampaignName, _campaign_page
from web.admin.session import Staff, StaffEditor, StaffOwner
from web.services import WebServices

router = APIRouter()


def _nurture(request: Request) -> WebServices:
    services: WebServices = request.app.state.nurture  # Starlette's State is untyped
    return services


def _act(request: Request, name: str, staff: Staff, action: str, form: dict[str, str]) -> Response:
    nurture = _nurture(request)
    who, now = review.Reviewer(staff.email, staff.role), nurture.clock()
    try:
        with transaction(nurture.sessions) as session:
            # What a launch reads: the stored current version (else the file), reviewed as such.
            sequence, version = launchable(session, name)
            if action == "review-requested":
                review.request_review(
                    session, sequence, who, now=now, note=form["comment"], version=version
                )
            elif action == "approved":
                review.approve(
                    session,
                    sequence,
                    who,
                    now=now,
                    comment=form["comment"],
                    seen=form["version"],
                    version=version,
                )
            else:
                review.send_back(
                    session, sequence, who, now=now, comment=form["comment"], version=version
                )
    except NurtureError as exc:
        return _campaign_page(request, name, staff, error=str(exc), status_code=400)
    return RedirectResponse(f"/admin/campaigns/{name}?done={action}", status_code=303)


@router.post("/campaigns/{name}/review")
def request_review(
    request: Request,
    staff: StaffEditor,
    name: CampaignName,
    comment: str = Form("", max_length=review.MAX_COMMENT),
) -> Response:
    return _act(request, name, staff, "review-requested", {"comment": comment})


@router.post("/campaigns/{name}/approve")
def approve(
    request: Request,
    staff: StaffOwner,
    name: CampaignName,
    version: str = Form("", max_length=64),
    comment: str = Form("", max_length=review.MAX_COMMENT),
) -> Response:
    return _act(request, name, staff, "approved", {"comment": comment, "version": version})


@router.post("/campaigns/{name}/send-back")
def send_back(
    request: Request,
    staff: StaffOwner,
    name: CampaignName,
    comment: str = Form("", max_length=review.MAX_COMMENT),
) -> Response:
    return _act(request, name, staff, "sent-back", {"comment": comment})


@router.post("/campaigns/{name}/upgrade")
def upgrade(
    request: Request,
    staff: StaffEditor,
    name: CampaignName,
    version: int = Form(..., ge=1),
) -> Response:
    """Move the running campaign to the version the page showed (`version`): steps not yet
    planned use it, steps already planned keep theirs (campaigns.content_upgrade)."""
    nurture = _nurture(request)
    who = review.Reviewer(staff.email, staff.role)
    try:
        with transaction(nurture.sessions) as session:
            review.upgrade(
                session, name, who, now=nurture.clock(), settings=nurture.settings, seen=version
            )
    except ValidationFailed as exc:
        message = f"Version {version} cannot be used yet: {'; '.join(exc.problems)}"
        return _campaign_page(request, name, staff, error=message, status_code=400)
    except NurtureError as exc:
        return _campaign_page(request, name, staff, error=str(exc), status_code=400)
    return RedirectResponse(f"/admin/campaigns/{name}?done=upgraded", status_code=303)
