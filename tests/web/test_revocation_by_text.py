"""Through the signed Twilio webhook and the preference page: a Spanish free-text revocation
stops texts and is answered in Spanish; a text opt-out is lifted only by START from the phone,
never by the email's preference page (a forwarded email must not re-subscribe a phone)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from contacts.suppressions import is_suppressed
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import ConsentEvent, Contact, Event

PHONE = "+13105550123"
INBOUND = "/webhooks/twilio/inbound"


def _inbound(body: str, sid: str, sender: str = PHONE) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "AccountSid": "AC" + "a" * 32,
        "From": sender,
        "To": "+13105550100",
        "Body": body,
        "NumMedia": "0",
        "SmsStatus": "received",
    }


def _sms_suppressed(app: NurtureApp, phone: str = PHONE) -> bool:
    with transaction(app.sessions) as session:
        return is_suppressed(session, "sms", phone)


def _sms_ledger(app: NurtureApp, contact_id: int) -> list[tuple[str, str]]:
    with transaction(app.sessions) as session:
        rows = session.execute(
            select(ConsentEvent.status, ConsentEvent.source)
            .where(ConsentEvent.contact_id == contact_id, ConsentEvent.channel == "sms")
            .order_by(ConsentEvent.id)
        )
        return [(status, source) for status, source in rows]


def _kinds(app: NurtureApp) -> list[str]:
    with transaction(app.sessions) as session:
        return list(session.scalars(select(Event.kind).order_by(Event.id)))


def test_a_spanish_free_text_revocation_stops_texts_and_is_answered_in_spanish(
    nurture_app: NurtureApp, make_contact: Any, client: Any, signing: Any
) -> None:
    contact = make_contact(phone=PHONE, sms=True)
    body = "Ya no me manden mensajes por favor"
    response = signing.twilio_post(client, INBOUND, _inbound(body, "SMes1"))
    assert response.status_code == 200 and response.text.count("<Message>") == 1
    assert "ya no recibira mas mensajes" in response.text and "COMENZAR" in response.text
    assert "unsubscribed" not in response.text  # not the English confirmation
    assert _sms_suppressed(nurture_app)
    with transaction(nurture_app.sessions) as session:
        assert session.get_one(Contact, contact).sms_consent == "opted_out"
        flagged = session.scalars(select(Event).where(Event.kind == "inbound_flagged")).one()
        assert flagged.data["intent"] == "revoke" and flagged.data["language"] == "es"
        assert flagged.data["body"] == body and flagged.data["from"] == "+1******0123"


def test_spanish_help_and_start_are_answered_in_spanish(
    nurture_app: NurtureApp, make_contact: Any, client: Any, signing: Any
) -> None:
    make_contact(phone=PHONE, sms=True)
    helped = signing.twilio_post(client, INBOUND, _inbound("AYUDA", "SMes2"))
    assert "para ayuda llame al" in helped.text and "PARAR" in helped.text
    signing.twilio_post(client, INBOUND, _inbound("PARAR", "SMes3"))
    assert _sms_suppressed(nurture_app)
    nurture_app.clock.advance(minutes=1)
    started = signing.twilio_post(client, INBOUND, _inbound("Sí", "SMes4"))
    assert "suscrito de nuevo" in started.text
    assert not _sms_suppressed(nurture_app)


def test_stop_by_text_is_lifted_only_from_the_handset(
    nurture_app: NurtureApp, make_contact: Any, client: Any, signing: Any
) -> None:
    contact = make_contact(phone=PHONE, sms=True)
    preferences = signing.path_of(nurture_app.signer.preferences_url(contact))
    signing.twilio_post(client, INBOUND, _inbound("STOP", "SM1"))
    assert _sms_suppressed(nurture_app)
    ledger_after_stop = _sms_ledger(nurture_app, contact)
    kinds_after_stop = _kinds(nurture_app)

    nurture_app.clock.advance(minutes=5)
    page = client.get(preferences)
    assert page.status_code == 200
    assert "stopped by text: reply START to resume" in page.text
    assert 'name="sms"' not in page.text  # no control to change it
    assert 'name="email"' in page.text  # email stays the page's to change

    # Someone holding a forwarded email tries to re-subscribe the phone.
    saved = client.post(preferences, data={"sms": "yes", "email": "yes"})
    assert saved.status_code == 200 and "stopped by text: reply START to resume" in saved.text
    assert _sms_suppressed(nurture_app)
    assert _sms_ledger(nurture_app, contact) == ledger_after_stop  # no consent recorded
    assert _kinds(nurture_app) == kinds_after_stop  # no "resubscribed" event either
    with transaction(nurture_app.sessions) as session:
        assert session.get_one(Contact, contact).sms_consent == "opted_out"

    # START from the phone itself resubscribes it.
    nurture_app.clock.advance(minutes=1)
    started = signing.twilio_post(client, INBOUND, _inbound("START", "SM2"))
    assert "subscribed again" in started.text
    assert not _sms_suppressed(nurture_app)
    assert _sms_ledger(nurture_app, contact)[-1] == ("opted_in", "reply START")
    with transaction(nurture_app.sessions) as session:
        assert session.get_one(Contact, contact).sms_consent == "opted_in"
    page = client.get(preferences)
    assert "stopped by text" not in page.text and 'name="sms"' in page.text


def test_start_from_another_phone_does_not_lift_it(
    nurture_app: NurtureApp, make_contact: Any, client: Any, signing: Any
) -> None:
    make_contact(phone=PHONE, sms=True)
    signing.twilio_post(client, INBOUND, _inbound("STOP", "SM1"))
    nurture_app.clock.advance(minutes=1)
    signing.twilio_post(client, INBOUND, _inbound("START", "SM2", sender="+13105550999"))
    assert _sms_suppressed(nurture_app)


def test_texts_stopped_from_a_link_stay_the_preference_page_s_to_restore(
    nurture_app: NurtureApp, make_contact: Any, client: Any, signing: Any
) -> None:
    """Only a text opt-out is the handset's: an SMS unsubscribe link is undone on the page."""
    contact = make_contact(phone=PHONE, sms=True)
    unsubscribe = signing.path_of(nurture_app.signer.unsubscribe_url(contact, "sms"))
    client.post(unsubscribe, content=b"List-Unsubscribe=One-Click")
    assert _sms_suppressed(nurture_app)
    nurture_app.clock.advance(minutes=1)
    preferences = signing.path_of(nurture_app.signer.preferences_url(contact))
    assert "stopped by text" not in client.get(preferences).text
    client.post(preferences, data={"sms": "yes", "email": "yes"})
    assert not _sms_suppressed(nurture_app)
