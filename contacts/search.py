"""Finding contacts the way staff think of them: by id, email, phone, name, tag or consent."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, exists, func, or_, select
from sqlalchemy.orm import Session

from contacts.normalize import normalize_email, normalize_phone
from core.errors import InputError, NotFound
from storage.models import Contact, ContactTag

DIGITS = re.compile(r"\D")


def find_contact(session: Session, ref: str) -> Contact:
    """The contact an id, an email or a phone number (any common format) names; else NotFound."""
    ref = ref.strip()
    contact = None
    if ref.isdigit() and len(ref) < 10:
        contact = session.get(Contact, int(ref))
    elif "@" in ref:
        try:
            email = normalize_email(ref)
        except InputError:
            email = ref.lower()
        contact = session.scalar(select(Contact).where(Contact.email == email))
    else:
        try:
            phone = normalize_phone(ref)
        except InputError:
            raise InputError(f"{ref!r} is not a contact id, an email or a phone number") from None
        contact = session.scalar(select(Contact).where(Contact.phone == phone))
    if contact is None:
        raise NotFound(f"no contact {ref}")
    return contact


@dataclass(frozen=True)
class Search:
    text: str = ""  # part of a name, an email, or the digits of a phone
    tag: str | None = None
    consent: str | None = None  # "email" | "sms": opted in on that channel
    include_forgotten: bool = False
    limit: int = 50


def has_tag(tag: str) -> ColumnElement[bool]:
    """The contact carries `tag` (ix_contact_tag_tag: tag, contact_id)."""
    return exists().where(ContactTag.contact_id == Contact.id, ContactTag.tag == tag)


def search_query(search: Search) -> Select[Contact]:
    query = select(Contact)
    if not search.include_forgotten:
        query = query.where(Contact.erased_at.is_(None))
    text = search.text.strip().lower()
    if text:
        like = f"%{text}%"
        full_name = func.lower(Contact.first_name + " " + Contact.last_name)
        conditions = [full_name.like(like), func.lower(Contact.email).like(like)]
        digits = DIGITS.sub("", text)
        if len(digits) >= 4 and not any(ch.isalpha() for ch in text):
            conditions.append(Contact.phone.like(f"%{digits}%"))
        query = query.where(or_(*conditions))
    if search.tag:
        query = query.where(has_tag(search.tag))
    if search.consent:
        if search.consent not in ("email", "sms"):
            raise InputError("--consent must be email or sms")
        query = query.where(getattr(Contact, f"{search.consent}_consent") == "opted_in")
    return query


def search_contacts(session: Session, search: Search) -> tuple[list[Contact], int]:
    """The first `limit` matches (by id) and how many match in all."""
    query = search_query(search)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list(session.scalars(query.order_by(Contact.id).limit(search.limit)))
    return rows, total
