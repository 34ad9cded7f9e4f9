"""A text opt-out is the phone's to undo: contacts.optout.opt_in_again refuses anything else."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from contacts.keywords import Intent, act_on
from contacts.optout import StoppedByText, opt_in_again, opt_out, stopped_by_text
from contacts.suppressions import is_suppressed
from core.errors import InputError
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import ConsentEvent, Contact, Event

PHONE = "+13105550123"


def _stop_by_text(app: NurtureApp, contact_id: int) -> None:
    with transaction(app.sessions) as session:
        contact = session.get_one(Contact, contact_id)
        act_on(session, Intent.STOP, PHONE, contact, at=app.clock())


def _opt_in(app: NurtureApp, contact_id: int, **kwargs: Any) -> bool:
    with transaction(app.sessions) as session:
        contact = session.get_one(Contact, contact_id)
        return opt_in_again(
            session,
            contact,
            "sms",
            evidence="checked the box",
            at=app.clock() + timedelta(minutes=1),
            **kwargs,
        )


def _counts(app: NurtureApp) -> tuple[int, int]:
    with transaction(app.sessions) as session:
        ledger = session.scalar(select(func.count()).select_from(ConsentEvent))
        events = session.scalar(select(func.count()).select_from(Event))
        return ledger or 0, events or 0


@pytest.mark.parametrize("replied_from", [None, "+13105550999", ""])
def test_anything_but_a_reply_from_the_phone_is_refused_and_records_nothing(
    nurture_app: NurtureApp, make_contact: Any, replied_from: str | None
) -> None:
    contact = make_contact(phone=PHONE, sms=True)
    _stop_by_text(nurture_app, contact)
    before = _counts(nurture_app)
    with pytest.raises(StoppedByText, match=r"\+1\*\*\*\*\*\*0123") as refused:
        _opt_in(nurture_app, contact, how="preference page", replied_from=replied_from)
    assert isinstance(refused.value, InputError)  # one line and exit code 65 in the CLI
    assert PHONE not in str(refused.value)
    assert _counts(nurture_app) == before
    with transaction(nurture_app.sessions) as session:
        assert is_suppressed(session, "sms", PHONE) and stopped_by_text(session, PHONE)


def test_a_reply_from_the_phone_lifts_it(nurture_app: NurtureApp, make_contact: Any) -> None:
    contact = make_contact(phone=PHONE, sms=True)
    _stop_by_text(nurture_app, contact)
    assert _opt_in(nurture_app, contact, how="reply START", replied_from=PHONE)
    with transaction(nurture_app.sessions) as session:
        assert not is_suppressed(session, "sms", PHONE) and not stopped_by_text(session, PHONE)


def test_other_opt_outs_are_not_the_phone_s(nurture_app: NurtureApp, make_contact: Any) -> None:
    """An SMS opt-out from a link or the dashboard, or an email opt-out, keeps its old way back."""
    contact = make_contact(phone=PHONE, sms=True)
    with transaction(nurture_app.sessions) as session:
        opt_out(
            session, session.get_one(Contact, contact), "sms", source="link", at=nurture_app.clock()
        )
        assert not stopped_by_text(session, PHONE)
    assert _opt_in(nurture_app, contact, how="preference page")
