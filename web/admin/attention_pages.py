"""Messages that need a person: uncertain sends (a crash between the provider call and its
record). The engine never re-sends them blindly (neither SendGrid nor Twilio takes an
idempotency key): it settles what the providers' own evidence decides (scheduler/settle.py;
those decisions are listed here as "settled automatically") and leaves the rest to an editor,
who checks the provider's log and settles each one here, through scheduler.attention like
`nurture campaigns resolve`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from core.errors import NurtureError
from scheduler.attention import Resolution, needing_attention, recently_settled, resolve
from scheduler.settle import checked_automatically
from storage.db import transaction
from web.admin.render import render
from web.admin.session import Staff, StaffEditor, StaffReader
from web.services import WebServices

router = APIRouter()
MessageId = Annotated[int, Path(ge=1)]


def _page(
    request: Request, staff: Staff, *, error: str | None = None, status: int = 200
) -> Response:
    nurture: WebServices = request.app.state.nurture
    automatic = checked_automatically(nurture.settings)
    with nurture.sessions() as session:
        items = needing_attention(session, checked_automatically=automatic)
        checking = len(needing_attention(session)) - len(items)
        settled = recently_settled(session)
    return render(
        request, "attention.html", staff, status_code=status, items=items, error=error,
        nav="attention", settled=settled, checking=checking,
    )  # fmt: skip


@router.get("/attention")
def attention(request: Request, staff: StaffReader) -> Response:
    return _page(request, staff)


@router.post("/attention/{message_id}")
def settle(
    request: Request,
    staff: StaffEditor,
    message_id: MessageId,
    how: Annotated[Resolution, Form()],
) -> Response:
    nurture: WebServices = request.app.state.nurture
    try:
        with transaction(nurture.sessions) as session:
            resolve(session, message_id, how, now=nurture.clock(), by=f"staff #{staff.id}")
    except NurtureError as exc:
        return _page(request, staff, error=str(exc), status=400)
    return RedirectResponse("/admin/attention?done=resolved", status_code=303)
