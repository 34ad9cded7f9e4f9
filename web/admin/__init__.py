"""The staff dashboard under /admin: campaigns, previews, reports, contacts and imports."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

ADMIN_DIR = Path(__file__).resolve().parent

if TYPE_CHECKING:
    from fastapi import FastAPI


def install(api: FastAPI) -> None:
    """Mount the staff routes and their two answers: the login redirect and the 403 page."""
    from fastapi import Request
    from fastapi.responses import RedirectResponse, Response

    from web.admin.render import render
    from web.admin.routes import router
    from web.admin.session import LoginRequired, StaffForbidden, StaffNotFound, current_staff

    api.include_router(router)

    @api.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/admin/login?next={exc.next_path}", status_code=303)

    @api.exception_handler(StaffNotFound)
    async def not_found(request: Request, exc: StaffNotFound) -> Response:
        detail = str(exc.detail).capitalize() + "."
        staff = current_staff(request)
        return render(request, "not_found.html", staff, status_code=404, reason=detail)

    @api.exception_handler(StaffForbidden)
    async def forbidden(request: Request, exc: StaffForbidden) -> Response:
        return render(
            request, "forbidden.html", current_staff(request), status_code=403, reason=exc.reason
        )
