"""The dashboard's contact list: every contact, newest first, filtered by tag, consent on each
channel, language and campaign, a page at a time.

Pages are keyset pages ("older than contact #id"), so page 2,000 costs what page 1 costs, with
no OFFSET walk and no count of a million rows. A campaign's enrollments (uq_enrollment:
campaign_id, contact_id) or a tag's rows (ix_contact_tag_tag: tag, contact_id) drive the walk in
contact order when chosen; otherwise the contacts' primary key does, and consent and language
are checked on the way. Those are common values (opted in, English), so a page is found within a
few thousand rows (20-90 ms on 1M contacts here); an index on each would cost every import and
consent change more than it saves a page view.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, SQLColumnExpression, and_, select
from sqlalchemy.orm import Session

from contacts.search import has_tag
from core.errors import InputError
from core.languages import LANGUAGES
from storage.models import Campaign, ConsentStatus, Contact, ContactTag, Enrollment

PAGE_SIZE = 50
NO_CONSENT = "none"  # never asked on that channel: no consent event recorded
CONSENT_CHOICES = (ConsentStatus.OPTED_IN.value, ConsentStatus.OPTED_OUT.value, NO_CONSENT)


@dataclass(frozen=True)
class ContactFilter:
    """What staff chose; empty strings mean "any" (a form's empty select)."""

    tag: str = ""
    email_consent: str = ""
    sms_consent: str = ""
    language: str = ""
    campaign: str = ""  # a campaign's name

    def __post_init__(self) -> None:
        for channel, value in (("email", self.email_consent), ("sms", self.sms_consent)):
            if value and value not in CONSENT_CHOICES:
                raise InputError(f"{channel} consent must be one of {', '.join(CONSENT_CHOICES)}")
        if self.language and self.language not in LANGUAGES:
            raise InputError(f"language must be one of {', '.join(LANGUAGES)}")

    @property
    def active(self) -> bool:
        return any((self.tag, self.email_consent, self.sms_consent, self.language, self.campaign))


@dataclass(frozen=True)
class ContactPage:
    contacts: list[Contact]
    older: int | None  # the `before` of the next page; None on the last one


def _consent(column: SQLColumnExpression[str | None], value: str) -> ColumnElement[bool]:
    return column.is_(None) if value == NO_CONSENT else column == value


def list_query(
    chosen: ContactFilter,
    *,
    campaign_id: int | None = None,
    before: int | None = None,
    where: tuple[ColumnElement[bool], ...] = (),
    limit: int = PAGE_SIZE,
) -> Select[Contact]:
    """Contacts not forgotten that pass every filter (and `where`, e.g. the search box's), newest
    first, older than contact #`before`."""
    conditions: list[ColumnElement[bool]] = [Contact.erased_at.is_(None), *where]
    if chosen.email_consent:
        conditions.append(_consent(Contact.email_consent, chosen.email_consent))
    if chosen.sms_consent:
        conditions.append(_consent(Contact.sms_consent, chosen.sms_consent))
    if chosen.language:
        conditions.append(Contact.language == chosen.language)
    query = select(Contact)
    order: SQLColumnExpression[int]
    if campaign_id is not None:  # walk the campaign's enrollments in contact order
        query = query.join(
            Enrollment,
            and_(
                Enrollment.campaign_id == campaign_id,
                Enrollment.contact_id == Contact.id,
                Enrollment.entry == 0,  # one row per person, whatever their re-entries
            ),
        )
        order = Enrollment.contact_id
        if chosen.tag:
            conditions.append(has_tag(chosen.tag))
    elif chosen.tag:  # walk the tag's rows in contact order
        query = query.join(
            ContactTag, and_(ContactTag.tag == chosen.tag, ContactTag.contact_id == Contact.id)
        )
        order = ContactTag.contact_id
    else:
        order = Contact.id
    if before is not None:
        conditions.append(order < before)
    return query.where(*conditions).order_by(order.desc()).limit(limit)


def list_page(
    session: Session,
    chosen: ContactFilter,
    *,
    before: int | None = None,
    where: tuple[ColumnElement[bool], ...] = (),
    limit: int = PAGE_SIZE,
) -> ContactPage:
    """One page; an unknown campaign name lists nobody (rather than everybody)."""
    campaign_id = None
    if chosen.campaign:
        campaign_id = session.scalar(select(Campaign.id).where(Campaign.name == chosen.campaign))
        if campaign_id is None:
            return ContactPage([], None)
    query = list_query(chosen, campaign_id=campaign_id, before=before, where=where, limit=limit + 1)
    rows = list(session.scalars(query))
    older = rows[limit - 1].id if len(rows) > limit else None
    return ContactPage(rows[:limit], older)
