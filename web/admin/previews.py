"""Previews of every step for a sample or chosen contact, rendered by the real Composer.

Links in a preview are signed for message 0 and contact 0, so clicking one records nothing and
unsubscribes nobody. The email is served from its own route inside a sandboxed iframe, with a
CSP that runs no script and loads no remote resource but images (marketing HTML is untrusted
content as far as the dashboard is concerned).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from campaigns.audience import audience_query
from campaigns.compose import Composer
from campaigns.content_render import renderer_for
from campaigns.definitions import Sequence, Step
from core.errors import NurtureError
from storage.models import Contact
from templates.renderer import RenderedEmail, RenderedSms
from web.admin.campaign_pages import CampaignName, find_definition
from web.admin.render import render
from web.admin.session import StaffNotFound, StaffReader
from web.services import WebServices

router = APIRouter()

SAMPLE = {"first_name": "Maria", "last_name": "Lopez", "custom_fields": {}}
EMAIL_FRAME_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "frame-ancestors 'self'; sandbox"
)
ContactId = Annotated[int | None, Query(alias="contact", ge=1)]


@dataclass
class StepPreview:
    index: int
    step: Step
    email: RenderedEmail | None = None
    sms: RenderedSms | None = None
    error: str | None = None


def _sample(
    session: Session, sequence: Sequence, contact_id: int | None
) -> tuple[Any, str, str | None]:
    """The chosen contact, else the first in the audience, else a made-up one."""
    problem = None
    if contact_id is not None:
        contact = session.get(Contact, contact_id)
        if contact is not None and contact.erased_at is None:
            return (
                contact,
                f"contact #{contact.id} ({contact.first_name} {contact.last_name})",
                None,
            )
        problem = f"There is no contact #{contact_id}; showing a sample instead."
    first = session.scalar(audience_query(sequence).order_by(Contact.id).limit(1))
    if first is not None:
        contact = session.get_one(Contact, first)
        label = f"the first contact in the audience, #{contact.id} ({contact.first_name})"
        return contact, label, problem
    return SAMPLE, "a made-up contact (Maria Lopez): the audience is empty", problem


def _render(composer: Composer, sequence: Sequence, index: int, contact: Any) -> StepPreview:
    step = sequence.steps[index]
    preview = StepPreview(index, step)
    try:
        rendered = composer.render(sequence, step, contact, 0, 0)
    except NurtureError as exc:
        preview.error = str(exc)
        return preview
    if isinstance(rendered, RenderedEmail):
        preview.email = rendered
    else:
        preview.sms = rendered
    return preview


def _sequence(session: Session, nurture: WebServices, name: str) -> tuple[Sequence, Composer]:
    """The sequence as the campaign page reads it, and a composer over its stored version's
    files (a campaign's pin, else the current version; the template files when it has none)."""
    row = find_definition(session, name)
    if row.sequence is None:
        raise StaffNotFound(row.problem or "this definition cannot be read")
    if row.version is None:
        return row.sequence, nurture.composer
    return row.sequence, replace(nurture.composer, renderer=renderer_for(session, row.version))


@router.get("/campaigns/{name}/preview")
def preview_page(
    request: Request,
    staff: StaffReader,
    name: CampaignName,
    contact_id: ContactId = None,
) -> Response:
    nurture: WebServices = request.app.state.nurture
    with nurture.sessions() as session:
        sequence, composer = _sequence(session, nurture, name)
        contact, label, problem = _sample(session, sequence, contact_id)
        previews = [_render(composer, sequence, i, contact) for i in range(len(sequence.steps))]
    return render(
        request,
        "preview.html",
        staff,
        name=name,
        sequence=sequence,
        previews=previews,
        sample_label=label,
        problem=problem,
        contact_id=contact_id,
        nav="campaigns",
    )


@router.get("/campaigns/{name}/steps/{index}/email.html")
def email_frame(
    request: Request,
    staff: StaffReader,
    name: CampaignName,
    index: Annotated[int, Path(ge=0, le=100)],
    contact_id: ContactId = None,
) -> Response:
    nurture: WebServices = request.app.state.nurture
    with nurture.sessions() as session:
        sequence, composer = _sequence(session, nurture, name)
        if index >= len(sequence.steps) or sequence.steps[index].channel != "email":
            raise StaffNotFound("no email step here")
        contact, _, _ = _sample(session, sequence, contact_id)
        preview = _render(composer, sequence, index, contact)
    body = preview.email.html if preview.email else f"<p>{escape(preview.error or '')}</p>"
    return HTMLResponse(
        body,
        headers={
            "Content-Security-Policy": EMAIL_FRAME_CSP,
            "X-Frame-Options": "SAMEORIGIN",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )
