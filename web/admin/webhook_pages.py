"""Outbound webhooks (staff.webhook_endpoints, scheduler.webhooks): everyone signed in sees the
endpoints and their last deliveries; editors register, test, deactivate and delete them.

An endpoint's URL is shown cut short to everyone (staff.webhook_endpoints.shown_url): its path
or query may carry the receiver's token, which nobody here needs to read back. A new endpoint's
secret is shown once, on the page that answers the register form (never in a URL or a
redirect, where a browser's history or a proxy's log would keep it); after that only its first
characters. The page also says how a receiver checks the signature.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from core.errors import NotFound, NurtureError
from core.signatures import HEADER
from scheduler.webhooks import BACKOFF, GIVE_UP_AFTER
from staff.webhook_endpoints import (
    EVENT_TYPES,
    NewEndpoint,
    deactivate,
    delete,
    delivery_counts,
    list_endpoints,
    queue_test,
    recent_deliveries,
    register,
    shown_url,
)
from storage.db import transaction
from web.admin.render import render
from web.admin.session import Staff, StaffEditor, StaffReader
from web.services import WebServices

router = APIRouter()
EndpointId = Annotated[int, Path(ge=1, le=2**63 - 1)]
#: Notices after a redirect, by code, so no request can make the page say anything else.
DONE = {
    "tested": "A test event is queued: it is posted within a few seconds.",
    "deactivated": "Endpoint deactivated: nothing more is sent to it.",
    "already": "That endpoint was already deactivated.",
    "deleted": "Endpoint deleted, with its deliveries.",
}


def _page(
    request: Request,
    staff: Staff,
    *,
    new_endpoint: NewEndpoint | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    nurture: WebServices = request.app.state.nurture
    with nurture.sessions() as session:
        endpoints = list_endpoints(session)
        counts = delivery_counts(session)
        deliveries = recent_deliveries(session)
        session.expunge_all()
    return render(
        request, "webhooks.html", staff, status_code=status, endpoints=endpoints, counts=counts,
        urls={e.id: shown_url(e.url) for e in endpoints},
        deliveries=deliveries, event_types=list(EVENT_TYPES), new_endpoint=new_endpoint,
        error=error, header=HEADER, backoff=_backoff_words(),
        last_wait=f"{BACKOFF[-1] // 3600} hours", give_up_hours=_hours(),
        notice=DONE.get(request.query_params.get("done", "")), nav="webhooks",
    )  # fmt: skip


def _backoff_words() -> str:
    return ", ".join(
        f"{s // 3600} h" if s >= 3600 else f"{s // 60} min" if s >= 60 else f"{s} s"
        for s in BACKOFF[:-1]
    )


def _hours() -> int:
    return int(GIVE_UP_AFTER.total_seconds() // 3600)


@router.get("/webhooks")
def webhooks(request: Request, staff: StaffReader) -> Response:
    return _page(request, staff)


@router.post("/webhooks")
def create(
    request: Request,
    staff: StaffEditor,
    url: Annotated[str, Form(max_length=2000)] = "",
    event_types: Annotated[list[str], Form(max_length=20)] = [],  # noqa: B006  # FastAPI copies it
) -> Response:
    nurture: WebServices = request.app.state.nurture
    try:
        with transaction(nurture.sessions) as session:
            made = register(
                session,
                url=url,
                event_types=event_types,
                created_by=f"{staff.email} (staff #{staff.id})",
                at=nurture.clock(),
                allow_private=nurture.settings.webhooks.allow_private_addresses,
            )
    except NurtureError as exc:
        return _page(request, staff, error=str(exc), status=400)
    return _page(request, staff, new_endpoint=made, status=201)


def _change(request: Request, staff: Staff, endpoint_id: int, what: str) -> Response:
    nurture: WebServices = request.app.state.nurture
    try:
        with transaction(nurture.sessions) as session:
            if what == "tested":
                queue_test(session, endpoint_id, at=nurture.clock())
            elif what == "deleted":
                delete(session, endpoint_id)
            elif not deactivate(session, endpoint_id, at=nurture.clock()):
                what = "already"
    except NurtureError as exc:
        return _page(
            request, staff, error=str(exc), status=404 if isinstance(exc, NotFound) else 400
        )
    return RedirectResponse(f"/admin/webhooks?done={what}", status_code=303)


@router.post("/webhooks/{endpoint_id}/test")
def send_test(request: Request, staff: StaffEditor, endpoint_id: EndpointId) -> Response:
    return _change(request, staff, endpoint_id, "tested")


@router.post("/webhooks/{endpoint_id}/deactivate")
def turn_off(request: Request, staff: StaffEditor, endpoint_id: EndpointId) -> Response:
    return _change(request, staff, endpoint_id, "deactivated")


@router.post("/webhooks/{endpoint_id}/delete")
def remove(request: Request, staff: StaffEditor, endpoint_id: EndpointId) -> Response:
    return _change(request, staff, endpoint_id, "deleted")
