"""Unsubscribe (/u/{token}) and preferences (/p/{token}).

A GET never unsubscribes: mail scanners follow links. The page's button POSTs; RFC 8058 one-click
is a POST with body `List-Unsubscribe=One-Click`, answered 200 with no redirect and no cookie.
The suppression is committed before the response is sent.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from contacts.optout import opt_in_again, opt_out
from contacts.suppressions import is_suppressed
from nurture.app import NurtureApp
from nurture.db import transaction
from nurture.models import Channel, ConsentStatus, Contact, SuppressionReason
from templates.links import ContactToken, InvalidToken
from web.pages import not_found, page

router = APIRouter(tags=["unsubscribe"])

LABELS = {Channel.EMAIL: "emails", Channel.SMS: "text messages"}
ONE_CLICK_BODY = b"List-Unsubscribe=One-Click"


def _read(request: Request, token: str, kind: str) -> ContactToken | None:
    app: NurtureApp = request.app.state.nurture
    try:
        return (
            app.signer.read_unsubscribe(token)
            if kind == "u"
            else app.signer.read_preferences(token)
        )
    except InvalidToken:
        return None


@router.get("/u/{token}", response_class=HTMLResponse, summary="Unsubscribe confirmation page")
def unsubscribe_page(token: str, request: Request) -> Response:
    parsed = _read(request, token, "u")
    if parsed is None or parsed.channel is None:
        return not_found(request)
    app: NurtureApp = request.app.state.nurture
    return page(
        request,
        "unsubscribe.html",
        done=False,
        channel_label=LABELS[parsed.channel],
        preferences_url=app.signer.preferences_url(parsed.contact_id),
    )


@router.post(
    "/u/{token}",
    summary="Unsubscribe (the page's button, or RFC 8058 one-click)",
    responses={200: {"description": "Unsubscribed"}, 404: {"description": "Bad link"}},
)
async def unsubscribe(token: str, request: Request) -> Response:
    body = await request.body()
    parsed = _read(request, token, "u")
    if parsed is None or parsed.channel is None:
        return not_found(request)
    app: NurtureApp = request.app.state.nurture
    one_click = body.strip() == ONE_CLICK_BODY
    with transaction(app.sessions) as session:
        contact = session.get(Contact, parsed.contact_id)
        if contact is not None:
            opt_out(
                session,
                contact,
                parsed.channel,
                reason=SuppressionReason.UNSUBSCRIBED,
                source="one-click" if one_click else "unsubscribe page",
            )
    if one_click:
        return PlainTextResponse("Unsubscribed.\n")
    return page(
        request,
        "unsubscribe.html",
        done=True,
        channel_label=LABELS[parsed.channel],
        preferences_url=app.signer.preferences_url(parsed.contact_id),
    )


def _channel_rows(session, contact: Contact) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    rows = []
    for channel in (Channel.EMAIL, Channel.SMS):
        address = contact.address(channel)
        subscribed = (
            address is not None
            and contact.consent_for(channel) == ConsentStatus.OPTED_IN
            and not is_suppressed(session, channel, address)
        )
        rows.append(
            {
                "name": str(channel),
                "label": "Emails"
                if channel == Channel.EMAIL
                else "Text messages (I agree to receive marketing texts at my number; reply STOP to end)",
                "subscribed": subscribed,
                "available": address is not None,
                "why": "no address on file",
            }
        )
    return rows


@router.get("/p/{token}", response_class=HTMLResponse, summary="Preference page")
def preferences_page(token: str, request: Request) -> Response:
    parsed = _read(request, token, "p")
    if parsed is None:
        return not_found(request)
    app: NurtureApp = request.app.state.nurture
    with transaction(app.sessions) as session:
        contact = session.get(Contact, parsed.contact_id)
        if contact is None or contact.erased_at is not None:
            return not_found(request)
        rows = _channel_rows(session, contact)
    return page(request, "preferences.html", channels=rows, saved=False)


@router.post("/p/{token}", response_class=HTMLResponse, summary="Save preferences")
async def save_preferences(token: str, request: Request) -> Response:
    form = await request.form()
    parsed = _read(request, token, "p")
    if parsed is None:
        return not_found(request)
    app: NurtureApp = request.app.state.nurture
    with transaction(app.sessions) as session:
        contact = session.get(Contact, parsed.contact_id)
        if contact is None or contact.erased_at is not None:
            return not_found(request)
        for row in _channel_rows(session, contact):
            channel, wanted = Channel(row["name"]), form.get(str(row["name"])) == "yes"
            if not row["available"] or wanted == row["subscribed"]:
                continue
            if wanted:
                opt_in_again(
                    session,
                    contact,
                    channel,
                    how="preference page",
                    evidence=f"checked '{row['label']}' on the preference page",
                )
            else:
                opt_out(session, contact, channel, source="preference page")
        rows = _channel_rows(session, contact)
    return page(request, "preferences.html", channels=rows, saved=True)
