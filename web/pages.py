"""Server-rendered pages for recipients (Jinja2, autoescaped; these are our files, not staff's).

Each page exists in every language we write in: English in web/pages/, the others in a folder
named by the language (web/pages/es/), like the message templates. A page is shown in the
language the person picked with the page's switch (`?lang=es`: the signed token in the path
stays as it was), else in the contact's language when the page knows the contact, else in the
browser's first language we have (Accept-Language), else in English.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from core.languages import DEFAULT_LANGUAGE, LANGUAGE_NAMES
from web import WEB_DIR

PAGES_DIR = WEB_DIR / "pages"
pages = Jinja2Templates(directory=str(PAGES_DIR))
#: (language, page) pairs that have a translation, read once: no file check per request
TRANSLATED = frozenset(
    (folder.name, path.name)
    for folder in PAGES_DIR.iterdir()
    if folder.is_dir() and folder.name in LANGUAGE_NAMES
    for path in folder.glob("*.html")
)
ACCEPT_LANGUAGE_ITEMS = 10  # a browser lists a handful; a longer header is not read further


def page_language(request: Request, stored: str | None = None) -> str:
    """The language to show: the switch's choice, the contact's, the browser's, English."""
    asked = request.query_params.get("lang", "")
    if asked in LANGUAGE_NAMES:
        return asked
    if stored in LANGUAGE_NAMES:
        return stored
    return browser_language(request.headers.get("accept-language", ""))


def browser_language(header: str) -> str:
    """The first language in an Accept-Language header that we write in ("es-MX" is "es")."""
    for item in header.split(",", ACCEPT_LANGUAGE_ITEMS)[:ACCEPT_LANGUAGE_ITEMS]:
        code = item.split(";", 1)[0].strip().lower()[:2]
        if code in LANGUAGE_NAMES:
            return code
    return DEFAULT_LANGUAGE


def with_language(url: str, language: str) -> str:
    """A link to one of our pages that keeps the language the person is reading in."""
    return f"{url}?{urlencode({'lang': language})}"


def language_switch(request: Request, language: str) -> list[dict[str, object]]:
    """English | Español: this same page (same path, so the same signed token) in each
    language, the other query parameters kept."""
    kept = [(key, value) for key, value in request.query_params.multi_items() if key != "lang"]
    return [
        {
            "code": code,
            "name": name,
            "current": code == language,
            "url": f"{request.url.path}?{urlencode([*kept, ('lang', code)])}",
        }
        for code, name in LANGUAGE_NAMES.items()
    ]


def page(
    request: Request,
    name: str,
    status_code: int = 200,
    *,
    language: str | None = None,
    **context: Any,
) -> HTMLResponse:
    language = language or page_language(request)
    template = f"{language}/{name}" if (language, name) in TRANSLATED else name
    clinic = request.app.state.nurture.settings.clinic
    return pages.TemplateResponse(
        request,
        template,
        {
            "clinic": clinic,
            "language": language if template != name else DEFAULT_LANGUAGE,
            "switch": language_switch(request, language),
            **context,
        },
        status_code=status_code,
        headers={"Content-Language": language if template != name else DEFAULT_LANGUAGE},
    )


def not_found(request: Request) -> HTMLResponse:
    return page(request, "not_found.html", status_code=404)
