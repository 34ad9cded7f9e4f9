"""Contacts: the list (newest first, filters, the search box), one contact's history, and the
two things staff may do to a contact: suppress a channel (contacts.optout, the same path as an
unsubscribe) or mark them booked (campaigns.booking, the same rule as the booking webhook)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.orm import Session

from campaigns.booking import mark_booked
from contacts.listing import CONSENT_CHOICES, ContactFilter, list_page
from contacts.normalize import normalize_email, normalize_phone
from contacts.optout import opt_out
from contacts.suppressions import address_hash
from core.errors import InputError
from core.languages import LANGUAGE_NAMES
from core.redact import mask_email, mask_phone
from storage.db import transaction
from storage.models import (
    Campaign,
    ConsentEvent,
    Contact,
    Enrollment,
    Event,
    Message,
    Suppression,
    SuppressionReason,
)
from web.admin.render import render
from web.admin.session import Staff, StaffEditor, StaffNotFound, StaffReader
from web.services import WebServices

router = APIRouter()
ContactId = Annotated[int, Path(ge=1)]
RESULTS = 50
TIMELINE = 200


def search_query(text: str, region: str = "US") -> Select[Contact]:
    """The first matches of the search box, by id (bench/reports_speed.py times it)."""
    base = select(Contact).where(Contact.erased_at.is_(None)).order_by(Contact.id).limit(RESULTS)
    return base.where(*search_conditions(text, region))


def search_conditions(text: str, region: str = "US") -> tuple[ColumnElement[bool], ...]:
    """An exact address when the text is one (unique index), else name prefixes.

    Emails and phones are matched after the same normalisation the importer applies, so
    "(310) 555-0102" finds +13105550102 and "Maria@Example.com" finds maria@example.com.
    """
    text = text.strip()
    if "@" in text:
        try:
            return (Contact.email == normalize_email(text),)
        except InputError:
            return (Contact.email.like(_prefix(text.lower())),)
    digits = re.sub(r"\D", "", text)
    if len(digits) >= 7 and len(digits) >= len(text.replace(" ", "")) - 6:
        try:
            return (Contact.phone == normalize_phone(text),)
        except InputError:
            return (Contact.phone.like(f"%{digits}%"),)
    words = [word for word in re.split(r"\s+", text) if word][:3]
    return tuple(
        or_(Contact.first_name.ilike(_prefix(word)), Contact.last_name.ilike(_prefix(word)))
        for word in words
    )


def _prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


@router.get("/contacts")
def contact_list(
    request: Request,
    staff: StaffReader,
    q: Annotated[str, Query(max_length=200)] = "",
    tag: Annotated[str, Query(max_length=64)] = "",
    email_consent: Annotated[str, Query(max_length=20)] = "",
    sms_consent: Annotated[str, Query(max_length=20)] = "",
    language: Annotated[str, Query(max_length=8)] = "",
    campaign: Annotated[str, Query(max_length=100)] = "",
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """Every contact, newest first, a page at a time (contacts.listing), narrowed by the
    filters and the search box together."""
    nurture: WebServices = request.app.state.nurture
    error: str | None = None
    try:
        chosen = ContactFilter(tag.strip(), email_consent, sms_consent, language, campaign)
    except InputError as exc:
        chosen, error = ContactFilter(), str(exc)
    with nurture.sessions() as session:
        page = list_page(
            session, chosen, before=before, where=search_conditions(q) if q.strip() else ()
        )
        campaigns = list(session.scalars(select(Campaign.name).order_by(Campaign.name)))
    kept = {
        key: value
        for key, value in (
            ("q", q), ("tag", chosen.tag), ("email_consent", chosen.email_consent),
            ("sms_consent", chosen.sms_consent), ("language", chosen.language),
            ("campaign", chosen.campaign),
        )
        if value
    }  # fmt: skip
    older = f"/admin/contacts?{urlencode({**kept, 'before': page.older})}" if page.older else None
    return render(
        request,
        "contacts.html",
        staff,
        status_code=400 if error else 200,
        error=error,
        q=q,
        chosen=chosen,
        page=page,
        older=older,
        first_page=f"/admin/contacts?{urlencode(kept)}" if before else None,
        campaigns=campaigns,
        consent_choices=CONSENT_CHOICES,
        languages=LANGUAGE_NAMES,
        mask_email=mask_email,
        mask_phone=mask_phone,
        nav="contacts",
    )


@dataclass
class TimelineEntry:
    at: datetime | None
    what: str
    detail: str
    campaign: str


def _suppressions(session: Session, contact: Contact) -> list[Suppression]:
    keys = [
        and_(
            Suppression.channel == channel,
            Suppression.address_hash == address_hash(session, channel, addr),
        )
        for channel, addr in (("email", contact.email), ("sms", contact.phone))
        if addr
    ]
    if not keys:
        return []
    return list(session.scalars(select(Suppression).where(or_(*keys)).order_by(Suppression.id)))


def _timeline(session: Session, contact_id: int, names: dict[int, str]) -> list[TimelineEntry]:
    entries: list[TimelineEntry] = []
    for message in session.scalars(
        select(Message)
        .where(Message.contact_id == contact_id)
        .order_by(Message.id.desc())
        .limit(TIMELINE)
    ):
        detail = message.skip_reason or message.error or message.provider_status or ""
        entries.append(
            TimelineEntry(
                message.sent_at or message.due_at,
                f"{message.channel} step {message.step_index + 1}: {message.state}",
                detail,
                names.get(message.campaign_id, ""),
            )
        )
    for event in session.scalars(
        select(Event)
        .where(Event.contact_id == contact_id)
        .order_by(Event.occurred_at.desc())
        .limit(TIMELINE)
    ):
        step = f" (step {event.step_index + 1})" if event.step_index is not None else ""
        detail = ", ".join(f"{k}: {v}" for k, v in sorted((event.data or {}).items()) if v)
        entries.append(
            TimelineEntry(
                event.occurred_at,
                f"{event.kind}{step}" + (f" by {event.channel}" if event.channel else ""),
                detail[:200],
                names.get(event.campaign_id or 0, ""),
            )
        )
    entries.sort(key=lambda entry: entry.at or datetime.min, reverse=True)
    return entries[:TIMELINE]


def _contact_page(
    request: Request, contact_id: int, staff: Staff, *, error: str | None = None, status: int = 200
) -> Response:
    nurture: WebServices = request.app.state.nurture
    with nurture.sessions() as session:
        contact = session.get(Contact, contact_id)
        if contact is None:
            raise StaffNotFound("no such contact")
        names = {row.id: row.name for row in session.execute(select(Campaign.id, Campaign.name))}
        enrollments = list(
            session.scalars(
                select(Enrollment)
                .where(Enrollment.contact_id == contact_id)
                .order_by(Enrollment.id)
            )
        )
        consent = list(
            session.scalars(
                select(ConsentEvent)
                .where(ConsentEvent.contact_id == contact_id)
                .order_by(ConsentEvent.occurred_at.desc(), ConsentEvent.id.desc())
            )
        )
        context = {
            "contact": contact,
            "tags": contact.tags,
            "consent": consent,
            "suppressions": _suppressions(session, contact),
            "enrollments": enrollments,
            "campaign_names": names,
            "timeline": _timeline(session, contact_id, names),
        }
    return render(
        request, "contact.html", staff, status_code=status, error=error, nav="contacts", **context
    )


@router.get("/contacts/{contact_id}")
def contact_page(request: Request, contact_id: ContactId, staff: StaffReader) -> Response:
    return _contact_page(request, contact_id, staff)


@router.post("/contacts/{contact_id}/suppress")
def suppress_contact(
    request: Request,
    staff: StaffEditor,
    contact_id: ContactId,
    channel: Literal["email", "sms", "both"] = Form(...),
) -> Response:
    nurture: WebServices = request.app.state.nurture
    channels = ("email", "sms") if channel == "both" else (channel,)
    with transaction(nurture.sessions) as session:
        contact = session.get(Contact, contact_id)
        if contact is None:
            raise StaffNotFound("no such contact")
        if not any(contact.address(one) for one in channels):
            error = f"This contact has no {' or '.join(channels)} address to suppress."
            session.rollback()
            return _contact_page(request, contact_id, staff, error=error, status=400)
        for one in channels:
            opt_out(
                session,
                contact,
                one,
                reason=SuppressionReason.MANUAL,
                source=f"staff #{staff.id} (dashboard)",
                at=nurture.clock(),
            )
    return RedirectResponse(f"/admin/contacts/{contact_id}?done=suppressed", status_code=303)


@router.post("/contacts/{contact_id}/booked")
def mark_contact_booked(request: Request, contact_id: ContactId, staff: StaffEditor) -> Response:
    nurture: WebServices = request.app.state.nurture
    with transaction(nurture.sessions) as session:
        contact = session.get(Contact, contact_id)
        if contact is None or contact.erased_at is not None:
            raise StaffNotFound("no such contact")
        result = mark_booked(
            session, contact, at=nurture.clock(), source=f"staff #{staff.id} (dashboard)"
        )
    done = "booked" if result.first_booking else "already-booked"
    return RedirectResponse(f"/admin/contacts/{contact_id}?done={done}", status_code=303)
