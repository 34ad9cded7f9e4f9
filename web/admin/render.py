"""Staff page rendering: Jinja2 files in web/admin/pages, autoescaped, with strict headers.

The Content-Security-Policy allows only our own scripts, styles and frames (the email preview),
and forbids framing staff pages anywhere (clickjacking on the launch and suppress buttons).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from web.admin import ADMIN_DIR
from web.admin.scheduler_status import current_scheduler_status
from web.admin.session import CSRF_FIELD, Staff

pages = Jinja2Templates(directory=str(ADMIN_DIR / "pages"))

PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

#: Short notices after a redirect, by code, so no request can make a page say anything else.
NOTICES = {
    "launched": "Campaign launched.",
    "review-requested": "Review requested: an owner can approve it or send it back.",
    "approved": "Approved: this version of the sequence may be launched.",
    "sent-back": "Sent back to the editors with your comment.",
    "paused": "Campaign paused: nothing more is sent until you resume it.",
    "resumed": "Campaign resumed.",
    "cancelled": "Campaign cancelled: its planned messages will not be sent.",
    "upgraded": "Moved to the newest version: steps not yet planned use it.",
    "suppressed": "Contact suppressed: nothing more is sent on that channel.",
    "booked": "Contact marked booked: they leave every nurture sequence.",
    "already-booked": "This contact was already marked booked; the booking was recorded again.",
    "logged-out": "You have signed out.",
    "resolved": "Settled. The message's record now says what happened.",
}


def local_time(value: datetime | None, zone: str, fmt: str = "%a %d %b %Y %H:%M") -> str:
    if value is None:
        return "—"
    return value.astimezone(ZoneInfo(zone)).strftime(fmt)


def render(
    request: Request,
    template: str,
    staff: Staff | None,
    /,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    settings = request.app.state.nurture.settings
    zone = settings.clinic.default_timezone
    notice = NOTICES.get(request.query_params.get("done", ""))
    response = pages.TemplateResponse(
        request,
        template,
        {
            "staff": staff,
            # Signed-in pages only: the sign-in page answers strangers and reads nothing.
            "scheduler": current_scheduler_status(request) if staff is not None else None,
            "csrf_field": CSRF_FIELD,
            "clinic": settings.clinic,
            "zone": zone,
            "notice": notice,
            "when": lambda value, fmt="%a %d %b %Y %H:%M": local_time(value, zone, fmt),
            **context,
        },
        status_code=status_code,
    )
    response.headers.update(SECURITY_HEADERS)
    return response
