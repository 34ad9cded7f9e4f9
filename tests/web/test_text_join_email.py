"""Text-to-join's email address: texted back after YES, recorded, and opted in only by the link
of the form's confirmation email (double opt-in, as on /join)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

from fastapi.testclient import TestClient
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from campaigns.definitions import load_sequence
from contacts.signup import HELD_ELSEWHERE
from core.clock import FrozenClock
from nurture.app import NurtureApp
from providers.memory import MemoryChannel
from storage.db import transaction
from storage.models import Campaign, CampaignState, ConsentEvent, ConsentStatus, Contact, Event

PHONE = "+13105550199"
TOKEN = "twilio-test-auth-token-0123456789"  # tests/web/conftest.py sets it in the environment


def _text(client: TestClient, body: str, sid: str) -> str | None:
    params = {"MessageSid": sid, "From": PHONE, "To": "+13105550100", "Body": body}
    url = "http://127.0.0.1:8000/webhooks/twilio/inbound"
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(url, params),
    }
    response = client.post("/webhooks/twilio/inbound", content=urlencode(params), headers=headers)
    assert response.status_code == 200
    found = re.search(r"<Message>(.*)</Message>", response.text, re.S)
    return found.group(1).replace("&amp;", "&") if found else None


def _texter(app: NurtureApp) -> Contact:
    with transaction(app.sessions) as session:
        contact = session.scalars(select(Contact).where(Contact.phone == PHONE)).one()
        session.expunge(contact)
        return contact


def _joined(app: NurtureApp, client: TestClient, keyword: str = "RELIEF") -> None:
    """A running spasm-relief campaign, the keyword, and the YES that asks for an email."""
    with transaction(app.sessions) as session:
        definition = load_sequence("spasm-relief").snapshot()
        session.add(Campaign(name="spasm", definition=definition, state=CampaignState.ACTIVE))
    _text(client, keyword, "SM-join")
    asked = _text(client, "SI" if keyword == "ALIVIO" else "YES", "SM-yes")
    assert asked is not None
    assert ("correo" if keyword == "ALIVIO" else "email address") in asked


def test_an_address_texted_back_is_recorded_and_confirmed_by_its_link(
    nurture_app: NurtureApp, client: TestClient, channel: MemoryChannel
) -> None:
    _joined(nurture_app, client)
    thanks = _text(client, "sure, it's Ana.Lopez@Example.com thanks!", "SM-email")
    assert (
        thanks
        == "Spinal Decompression LA: Thanks! We have emailed you a link to confirm your address."
    )
    contact = _texter(nurture_app)
    assert contact.email == "ana.lopez@example.com"
    assert contact.email_consent is None  # not opted in by a text
    [email] = channel.emails
    assert email.to == "ana.lopez@example.com" and "confirm your email" in email.subject
    link = re.search(r"http://127\.0\.0\.1:8000(/join/confirm/\S+)", email.text)
    assert link, "the email holds the signed link"
    assert client.get(link.group(1)).status_code == 200  # a GET confirms nothing
    assert _texter(nurture_app).email_consent is None
    assert client.post(link.group(1)).status_code == 200
    assert _texter(nurture_app).email_consent == ConsentStatus.OPTED_IN
    with transaction(nurture_app.sessions) as session:
        [entry] = session.scalars(select(ConsentEvent).where(ConsentEvent.channel == "email"))
        assert entry.source == "text-to-join, confirmed by email link"
        proof = json.loads(entry.evidence)
        assert proof["text"].startswith("sure, it's") and PHONE not in entry.evidence


def test_spanish_texters_are_answered_and_emailed_in_spanish(
    nurture_app: NurtureApp, client: TestClient, channel: MemoryChannel
) -> None:
    _joined(nurture_app, client, "ALIVIO")
    thanks = _text(client, "rosa@example.com", "SM-email")
    assert thanks is not None and "Le enviamos un correo" in thanks
    [email] = channel.emails
    assert "Confirme su correo" in email.subject and "Gracias por inscribirse" in email.text


def test_an_address_another_contact_holds_is_not_taken_and_staff_are_told(
    nurture_app: NurtureApp, client: TestClient, channel: MemoryChannel, make_contact: Any
) -> None:
    owner = make_contact(email="ana@example.com")
    _joined(nurture_app, client)
    thanks = _text(client, "ana@example.com", "SM-email")
    # The same words as when it is taken: the answer must not say who is on the list.
    assert thanks is not None and "emailed you a link" in thanks
    assert channel.emails == []
    texter = _texter(nurture_app)
    assert texter.email is None and texter.id != owner
    with transaction(nurture_app.sessions) as session:
        held = session.get(Contact, owner)
        assert held is not None and held.phone is None  # the owner's contact is untouched
        [note] = session.scalars(select(Event).where(Event.kind == HELD_ELSEWHERE))
        assert note.contact_id == texter.id and "ana@example.com" not in json.dumps(note.data)
    assert _text(client, "ana.lopez@example.com", "SM-again") is not None  # may send another
    assert _texter(nurture_app).email == "ana.lopez@example.com"


def test_an_at_sign_in_a_sentence_is_an_ordinary_reply(
    nurture_app: NurtureApp, client: TestClient, channel: MemoryChannel, frozen_clock: FrozenClock
) -> None:
    _joined(nurture_app, client)
    for n, body in enumerate(
        [
            "I'm @ work, text me later",
            "ana@example.com or ana@work.example.com",  # two: we do not guess
            "it is ana..lopez@example.com",  # email-validator refuses it
        ]
    ):
        frozen_clock.advance(minutes=1)
        assert _text(client, body, f"SM-other-{n}") is None
    assert _texter(nurture_app).email is None and channel.emails == []
    with transaction(nurture_app.sessions) as session:
        kinds = list(session.scalars(select(Event.kind).where(Event.kind.like("signup%"))))
        assert HELD_ELSEWHERE not in kinds and kinds.count("signup_pending") == 0


def test_an_address_texted_long_after_the_yes_is_not_taken(
    nurture_app: NurtureApp, client: TestClient, channel: MemoryChannel, frozen_clock: FrozenClock
) -> None:
    _joined(nurture_app, client)
    frozen_clock.advance(days=8)  # signup.unconfirmed_days is 7
    assert _text(client, "ana@example.com", "SM-late") is None
    assert _texter(nurture_app).email is None and channel.emails == []
