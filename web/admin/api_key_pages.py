"""API keys for /api/v1 (staff.api_keys): everyone sees the list, editors create and revoke.

A new key is shown once, on the page that answers the create form itself (never in a URL or
a redirect, where a browser's history or a proxy's log would keep it); after that only its
first characters are ever shown.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from core.errors import NurtureError
from staff.api_keys import NewKey, create_key, list_keys, revoke_key
from storage.db import transaction
from web.admin.render import render
from web.admin.session import Staff, StaffEditor, StaffReader
from web.services import WebServices

router = APIRouter()
KeyId = Annotated[int, Path(ge=1, le=2**63 - 1)]
#: Notices after a redirect, by code, so no request can make the page say anything else.
DONE = {
    "revoked": "Key revoked: requests with it are refused from now on.",
    "already": "That key was already revoked.",
}


def _page(
    request: Request,
    staff: Staff,
    *,
    new_key: NewKey | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    nurture: WebServices = request.app.state.nurture
    with nurture.sessions() as session:
        keys = list_keys(session)
    return render(
        request, "api_keys.html", staff, status_code=status, keys=keys, new_key=new_key,
        error=error, notice=DONE.get(request.query_params.get("done", "")), nav="api-keys",
    )  # fmt: skip


@router.get("/api-keys")
def api_keys(request: Request, staff: StaffReader) -> Response:
    return _page(request, staff)


@router.post("/api-keys")
def create(
    request: Request,
    staff: StaffEditor,
    name: Annotated[str, Form(max_length=200)] = "",
    scope: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    nurture: WebServices = request.app.state.nurture
    try:
        with transaction(nurture.sessions) as session:
            new_key = create_key(
                session,
                name=name,
                scope=scope,
                created_by=f"{staff.email} (staff #{staff.id})",
                at=nurture.clock(),
            )
    except NurtureError as exc:
        return _page(request, staff, error=str(exc), status=400)
    return _page(request, staff, new_key=new_key, status=201)


@router.post("/api-keys/{key_id}/revoke")
def revoke(request: Request, staff: StaffEditor, key_id: KeyId) -> Response:
    nurture: WebServices = request.app.state.nurture
    try:
        with transaction(nurture.sessions) as session:
            revoked = revoke_key(session, key_id, at=nurture.clock())
    except NurtureError as exc:
        return _page(request, staff, error=str(exc), status=404)
    return RedirectResponse(
        f"/admin/api-keys?done={'revoked' if revoked else 'already'}", status_code=303
    )
