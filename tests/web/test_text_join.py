"""Double opt-in by text: the form's YES, text-to-join (RELIEF, ALIVIO), and a plain YES."""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

from sqlalchemy import select
from twilio.request_validator import RequestValidator

from campaigns.definitions import load_sequence
from storage.db import transaction
from storage.models import Campaign, CampaignState, ConsentEvent, ConsentStatus, Contact, Enrollment

PHONE = "+13105550188"
TOKEN = "twilio-test-auth-token-0123456789"  # tests/web/conftest.py sets it in the environment


def _text(client, body: str, sid: str, sender: str = PHONE):
    params = {"MessageSid": sid, "From": sender, "To": "+13105550100", "Body": body}
    url = "http://127.0.0.1:8000/webhooks/twilio/inbound"
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(url, params),
    }
    response = client.post("/webhooks/twilio/inbound", content=urlencode(params), headers=headers)
    assert response.status_code == 200
    found = re.search(r"<Message>(.*)</Message>", response.text, re.S)
    return found.group(1).replace("&amp;", "&") if found else None


def _contact(app, phone: str = PHONE) -> Contact | None:
    with transaction(app.sessions) as session:
        contact = session.scalar(select(Contact).where(Contact.phone == phone))
        if contact is not None:
            session.expunge(contact)
        return contact


def _sms_ledger(app) -> list[ConsentEvent]:
    with transaction(app.sessions) as session:
        found = list(session.scalars(select(ConsentEvent).where(ConsentEvent.channel == "sms")))
        session.expunge_all()
        return found


def _running_spasm_relief(app) -> int:
    with transaction(app.sessions) as session:
        campaign = Campaign(
            name="spasm-relief-winter",
            definition=load_sequence("spasm-relief").snapshot(),
            state=CampaignState.ACTIVE,
        )
        session.add(campaign)
        session.flush()
        return campaign.id


def _enrolled(app, contact_id: int) -> list[int]:
    with transaction(app.sessions) as session:
        query = select(Enrollment.campaign_id).where(Enrollment.contact_id == contact_id)
        return list(session.scalars(query))


def _form_sign_up(client, clock) -> None:
    token = re.search(r'name="token" value="([^"]+)"', client.get("/join").text).group(1)
    clock.advance(seconds=5)
    fields = {"token": token, "email": "ana@example.com", "phone": PHONE, "sms_consent": "yes"}
    response = client.post("/join", data=fields, headers={"User-Agent": "UA/1"})
    assert response.status_code == 200


def test_yes_after_the_form_opts_the_number_in_with_the_forms_evidence(
    nurture_app, client, frozen_clock, channel
):
    _form_sign_up(client, frozen_clock)
    assert _contact(nurture_app).sms_consent is None
    frozen_clock.advance(minutes=2)
    reply = _text(client, "Yes", "SMJ1")
    assert "you are confirmed" in reply
    contact = _contact(nurture_app)
    assert contact.sms_consent == ConsentStatus.OPTED_IN
    [event] = _sms_ledger(nurture_app)
    proof = json.loads(event.evidence)
    assert proof["disclosure"].startswith("I agree to receive marketing texts")
    assert proof["form_url"] == "http://127.0.0.1:8000/join?lang=en"
    assert (proof["ip"], proof["user_agent"]) == ("testclient", "UA/1")
    assert proof["signed_up_at"] == "2026-12-01T18:00:05+00:00"
    assert proof["reply"] == "Yes" and proof["replied_at"] == "2026-12-01T18:02:05+00:00"
    assert PHONE not in event.evidence  # the number is masked in the proof
    assert contact.email_consent is None  # the email confirms by its link


def test_yes_without_a_pending_sign_up_is_an_ordinary_start(
    nurture_app, client, make_contact, frozen_clock
):
    make_contact(phone=PHONE, sms=True)
    _text(client, "STOP", "SMS1")
    assert _contact(nurture_app).sms_consent == ConsentStatus.OPTED_OUT
    frozen_clock.advance(minutes=1)  # an opt-out at the same instant outranks (contacts.consent)
    reply = _text(client, "YES", "SMS2")
    assert "subscribed again" in reply
    assert _contact(nurture_app).sms_consent == ConsentStatus.OPTED_IN
    assert _sms_ledger(nurture_app)[-1].source == "reply START"


def test_relief_starts_the_flow_and_yes_enrolls_and_asks_for_email(nurture_app, client):
    campaign_id = _running_spasm_relief(nurture_app)
    prompt = _text(client, "Relief!", "SMR1")
    assert prompt.startswith("Spinal Decompression LA: Reply YES to confirm.")
    assert "Consent is not a condition of purchase" in prompt
    contact = _contact(nurture_app)
    assert contact.sms_consent is None and contact.language == "en"
    assert _enrolled(nurture_app, contact.id) == []
    reply = _text(client, "yes", "SMR2")
    assert "Reply with your email address" in reply
    assert _contact(nurture_app).sms_consent == ConsentStatus.OPTED_IN
    assert _enrolled(nurture_app, contact.id) == [campaign_id]
    [event] = _sms_ledger(nurture_app)
    proof = json.loads(event.evidence)
    assert proof["keyword"] == "RELIEF" and proof["text"] == "Relief!"
    assert proof["disclosure"] == prompt and proof["reply"] == "yes"
    thanks = _text(client, "sure it's Ana.Lopez@Example.com thanks", "SMR3")
    assert "emailed you a link to confirm" in thanks
    held = _contact(nurture_app)
    assert held.email == "ana.lopez@example.com" and held.email_consent is None
    assert _text(client, "yes", "SMR4") is not None  # a later YES: an ordinary START
    assert _enrolled(nurture_app, contact.id) == [campaign_id]  # enrolled once


def test_alivio_sets_spanish_and_answers_in_spanish(nurture_app, client):
    _running_spasm_relief(nurture_app)
    prompt = _text(client, "alivio", "SMA1")
    assert prompt.startswith("Spinal Decompression LA: Responda SI para confirmar.")
    assert _contact(nurture_app).language == "es"
    reply = _text(client, "Sí", "SMA2")
    assert "confirmado" in reply
    assert _contact(nurture_app).sms_consent == ConsentStatus.OPTED_IN


def test_an_email_texted_without_being_asked_is_not_taken(nurture_app, client, make_contact):
    make_contact(phone=PHONE, email=None, sms=True)
    assert _text(client, "my email is ana@example.com", "SME1") is None
    assert _contact(nurture_app).email is None


def test_a_yes_after_the_sign_up_expired_is_an_ordinary_start(nurture_app, client, frozen_clock):
    _running_spasm_relief(nurture_app)
    _text(client, "RELIEF", "SMX1")
    frozen_clock.advance(days=8)
    reply = _text(client, "YES", "SMX2")
    assert "subscribed again" in reply  # no pending sign-up is confirmed after N days
    contact = _contact(nurture_app)
    assert _enrolled(nurture_app, contact.id) == []
