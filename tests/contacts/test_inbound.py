"""contacts.inbound on SQLite and PostgreSQL: which inbound texts staff read, and marking one as
a revocation (the one opt-out, reason STOP, a mark event naming who; once only)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from contacts.inbound import mark_as_revocation, recent_unclear
from contacts.suppressions import active_suppression
from core.errors import InputError, NotFound
from core.redact import mask_phone
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import ConsentEvent, Contact, Event

PHONE = "+13105550123"


def _received(
    app: NurtureApp, body: str, intent: str, contact_id: int | None, phone: str = PHONE
) -> int:
    """An inbound text as web.webhooks.twilio records it."""
    app.clock.advance(minutes=1)
    kind = "inbound_flagged" if intent == "revoke" else "inbound"
    data = {"intent": intent, "language": "en", "body": body, "from": mask_phone(phone)}
    with transaction(app.sessions) as session:
        event = Event(kind=kind, occurred_at=app.clock(), contact_id=contact_id, data=data)
        session.add(event)
        session.flush()
        return event.id


def test_only_unclear_texts_newest_first(nurture_app: NurtureApp, make_contact: Any) -> None:
    contact = make_contact(phone=PHONE, sms=True)
    other = _received(nurture_app, "not now", "other", contact)
    _received(nurture_app, "STOP", "stop", contact)
    revoke = _received(nurture_app, "please stop texting me", "revoke", contact)
    _received(nurture_app, "HELP", "help", contact)
    with transaction(nurture_app.sessions) as session:
        session.add(
            Event(kind="clicked", occurred_at=nurture_app.clock(), data={"intent": "other"})
        )
        session.add(Event(kind="inbound", occurred_at=nurture_app.clock(), data={}))  # forgotten
    with nurture_app.sessions() as session:
        texts = recent_unclear(session)
        assert [(t.event_id, t.intent) for t in texts] == [(revoke, "revoke"), (other, "other")]
        assert [t.markable for t in texts] == [False, True]
        assert texts[1].sender == "+1******0123" and texts[1].body == "not now"
        assert len(recent_unclear(session, limit=1)) == 1


def test_a_mark_opts_out_once_and_says_who(nurture_app: NurtureApp, make_contact: Any) -> None:
    contact = make_contact(phone=PHONE, sms=True)
    unclear = _received(nurture_app, "who gave you my number", "other", contact)
    nurture_app.clock.advance(minutes=5)
    with transaction(nurture_app.sessions) as session:
        assert mark_as_revocation(session, unclear, by="ed (staff #1)", at=nurture_app.clock())
    with transaction(nurture_app.sessions) as session:
        assert not mark_as_revocation(session, unclear, by="al (staff #2)", at=nurture_app.clock())
    with nurture_app.sessions() as session:
        suppression = active_suppression(session, "sms", PHONE)
        assert suppression is not None and suppression.reason == "stop"
        assert "marked as a revocation by ed (staff #1)" in suppression.source
        assert session.get_one(Contact, contact).sms_consent == "opted_out"
        opt_outs = session.scalar(
            select(func.count()).where(
                ConsentEvent.status == "opted_out", ConsentEvent.channel == "sms"
            )
        )
        assert opt_outs == 1
        [text] = recent_unclear(session)
        assert (text.marked_by, text.marked_at, text.markable) == (
            "ed (staff #1)",
            nurture_app.clock(),
            False,
        )


def test_a_revocation_acted_on_needs_no_mark(nurture_app: NurtureApp, make_contact: Any) -> None:
    contact = make_contact(phone=PHONE, sms=True)
    revoke = _received(nurture_app, "remove my number", "revoke", contact)
    with transaction(nurture_app.sessions) as session:
        assert not mark_as_revocation(session, revoke, by="ed", at=nurture_app.clock())
        assert session.scalar(select(func.count()).where(Event.kind == "inbound_marked")) == 0


def test_what_cannot_be_marked(nurture_app: NurtureApp, make_contact: Any) -> None:
    contact = make_contact(phone=PHONE, sms=True)
    keyword = _received(nurture_app, "HELP", "help", contact)
    stranger = _received(nurture_app, "not now", "other", None, phone="+13105550999")
    moved = _received(nurture_app, "hmm", "other", contact, phone="+13105550111")
    with transaction(nurture_app.sessions) as session:
        click = Event(kind="clicked", occurred_at=nurture_app.clock(), data={"intent": "other"})
        session.add(click)
        session.flush()
        click_id = click.id
    cases: list[tuple[int, type[Exception], str]] = [
        (keyword, InputError, "clear keyword"),
        (stranger, InputError, "no contact for"),
        (moved, InputError, "phone number changed"),
        (click_id, NotFound, "no inbound text"),
        (10**9, NotFound, "no inbound text"),
    ]
    for event_id, error, says in cases:
        with transaction(nurture_app.sessions) as session, pytest.raises(error, match=says):
            mark_as_revocation(session, event_id, by="ed", at=nurture_app.clock())
    with nurture_app.sessions() as session:
        assert active_suppression(session, "sms", PHONE) is None
