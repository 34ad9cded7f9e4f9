"""GET /l/{token}: record the click, then 302 to the registered destination with UTM parameters.

The token names a message and a destination *key*; the URL comes from settings or the campaign's
definition, so no request can redirect anywhere else (no open redirect).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from campaigns.definitions import Sequence
from nurture.app import NurtureApp
from nurture.db import transaction
from nurture.models import Campaign, Event, Message
from templates.links import InvalidToken
from web.pages import not_found

router = APIRouter(tags=["links"])


def with_utm(url: str, *, medium: str, campaign: str, content: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if not k.startswith("utm_")]
    query += [
        ("utm_source", "nurture"),
        ("utm_medium", medium),
        ("utm_campaign", campaign),
        ("utm_content", content),
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


@router.get(
    "/l/{token}",
    summary="Tracked link: records the click and redirects to a registered destination",
    responses={
        302: {"description": "Redirect to the destination"},
        404: {"description": "Bad link"},
    },
)
def follow_link(token: str, request: Request) -> Response:
    app: NurtureApp = request.app.state.nurture
    try:
        click = app.signer.read_click(token)
    except InvalidToken:
        return not_found(request)
    with transaction(app.sessions) as session:
        message = session.get(Message, click.message_id)
        if message is None:
            return not_found(request)
        campaign = session.get_one(Campaign, message.campaign_id)
        sequence = Sequence.from_snapshot(campaign.definition)
        target = app.composer.destinations(sequence).get(click.destination)
        if target is None:
            return not_found(request)
        step = sequence.steps[message.step_index]
        session.add(
            Event(
                kind="clicked",
                message_id=message.id,
                contact_id=message.contact_id,
                campaign_id=message.campaign_id,
                step_index=message.step_index,
                channel=message.channel,
                user_agent=(request.headers.get("user-agent") or "")[:400],
                data={"destination": click.destination},
            )
        )
    location = with_utm(target, medium=message.channel, campaign=campaign.name, content=step.name)
    return RedirectResponse(location, status_code=302, headers={"Cache-Control": "no-store"})
