"""Server-rendered pages for recipients (Jinja2, autoescaped; these are our files, not staff's)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from web import WEB_DIR

pages = Jinja2Templates(directory=str(WEB_DIR / "pages"))


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    clinic = request.app.state.nurture.settings.clinic
    return pages.TemplateResponse(
        request, name, {"clinic": clinic, **context}, status_code=status_code
    )


def not_found(request: Request) -> HTMLResponse:
    return page(request, "not_found.html", status_code=404)
