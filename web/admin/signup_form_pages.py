"""The sign-up form for the clinic's website: its hosted links and the snippet staff copy.

The snippet is an iframe of /join?embed=1 rather than a bare HTML <form> posting to /join: a
form on the clinic's page could not carry our signed, time-stamped form token without a script
fetching one, and the disclosure beside its SMS box would be the website's copy, not the exact
text the consent ledger records (web.join). In the iframe the form, its token, its honeypot and
its disclosure stay ours, and the browser lets only `signup.embed_origins` frame it.
"""

from __future__ import annotations

import html

from fastapi import APIRouter, Request
from fastapi.responses import Response

from core.languages import LANGUAGE_NAMES
from core.settings import Settings
from web.admin.render import render
from web.admin.session import StaffReader
from web.join import embed_origins, form_link
from web.services import WebServices

router = APIRouter()
#: The iframe's title, read by screen readers on the clinic's page, per language.
FRAME_TITLE = {"en": "Sign up for back-pain tips", "es": "Inscríbase para recibir consejos"}


def snippet(settings: Settings, language: str) -> str:
    """The HTML the clinic pastes into its website: one iframe, no script."""
    source = form_link(settings.web.public_base_url, language, embed=True)
    title = FRAME_TITLE.get(language, FRAME_TITLE["en"])
    return (
        f'<iframe src="{html.escape(source)}" title="{html.escape(title)}" '
        'style="width:100%;max-width:560px;height:760px;border:0" loading="lazy"></iframe>'
    )


@router.get("/sign-up-form")
def sign_up_form(request: Request, staff: StaffReader) -> Response:
    nurture: WebServices = request.app.state.nurture
    settings = nurture.settings
    forms = [
        {
            "code": code,
            "name": name,
            "link": form_link(settings.web.public_base_url, code),
            "snippet": snippet(settings, code),
        }
        for code, name in LANGUAGE_NAMES.items()
    ]
    return render(
        request, "sign_up_form.html", staff, forms=forms, origins=embed_origins(settings),
        nav="sign-up-form",
    )  # fmt: skip
