"""Inbound texts that were not a clear keyword: the free-text revocations acted on when they
arrived, and the unclear ones no rule was sure of. Everyone reads them (sender masked); an
editor marks an unclear one as a revocation with one click, through contacts.inbound, because
the FCC's 2025 rule (47 CFR 64.1200(a)(10)) counts any reasonable way of saying stop."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response

from contacts.inbound import mark_as_revocation, recent_unclear
from core.errors import NurtureError
from storage.db import transaction
from web.admin.render import render
from web.admin.session import Staff, StaffEditor, StaffReader
from web.services import WebServices

router = APIRouter()
EventId = Annotated[int, Path(ge=1, le=2**63 - 1)]
#: Notices after a redirect, by code, so no request can make the page say anything else.
DONE = {
    "marked": "Marked as a revocation: no more texts go to that number until it texts START.",
    "already": "That text was already a revocation: nothing more to do.",
}


def _page(
    request: Request, staff: Staff, *, error: str | None = None, status: int = 200
) -> Response:
    nurture: WebServices = request.app.state.nurture
    with nurture.sessions() as session:
        texts = recent_unclear(session)
    return render(
        request, "inbound.html", staff, status_code=status, texts=texts, error=error,
        notice=DONE.get(request.query_params.get("done", "")), nav="inbound",
    )  # fmt: skip


@router.get("/inbound")
def inbound(request: Request, staff: StaffReader) -> Response:
    return _page(request, staff)


@router.post("/inbound/{event_id}/revocation")
def mark(request: Request, staff: StaffEditor, event_id: EventId) -> Response:
    nurture: WebServices = request.app.state.nurture
    try:
        with transaction(nurture.sessions) as session:
            marked = mark_as_revocation(
                session, event_id, by=f"{staff.email} (staff #{staff.id})", at=nurture.clock()
            )
    except NurtureError as exc:
        return _page(request, staff, error=str(exc), status=400)
    return RedirectResponse(
        f"/admin/inbound?done={'marked' if marked else 'already'}", status_code=303
    )
