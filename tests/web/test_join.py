"""The hosted sign-up form (/join): its guards, and double opt-in by email link and by YES."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from sqlalchemy import select

from contacts.signup import CONFIRMED, PENDING, purge_unconfirmed
from storage.db import transaction
from storage.models import ConsentEvent, ConsentStatus, Contact, Event

EMAIL, PHONE = "ana.lopez@example.com", "+13105550177"
UA = "Mozilla/5.0 (test browser)"
DISCLOSURE = (
    "I agree to receive marketing texts from Spinal Decompression LA at this number, up to 4 "
    "msgs/mo. Consent is not a condition of purchase. Msg & data rates may apply. Reply STOP to "
    "cancel, HELP for help."
)


def _token(page: str) -> str:
    found = re.search(r'name="token" value="([^"]+)"', page)
    assert found, "the form carries a signed token"
    return found.group(1)


def _fields(token: str, **extra: str) -> dict[str, str]:
    return {
        "token": token,
        "first_name": "Ana",
        "last_name": "Lopez",
        "email": EMAIL,
        "phone": PHONE,
        "sms_consent": "yes",
        "website": "",
        **extra,
    }


def _sign_up(client, clock, *, wait: float = 5, lang: str = "en", **extra: str):
    token = _token(client.get(f"/join?lang={lang}").text)
    clock.advance(seconds=wait)
    return client.post(
        f"/join?lang={lang}", data=_fields(token, **extra), headers={"User-Agent": UA}
    )


def _contacts(app) -> list[Contact]:
    with transaction(app.sessions) as session:
        found = list(session.scalars(select(Contact)))
        session.expunge_all()
        return found


def _ledger(app, channel: str) -> list[ConsentEvent]:
    with transaction(app.sessions) as session:
        found = list(session.scalars(select(ConsentEvent).where(ConsentEvent.channel == channel)))
        session.expunge_all()
        return found


def _link(channel) -> str:
    found = re.search(r"http://127\.0\.0\.1:8000(/join/confirm/\S+)", channel.emails[-1].text)
    assert found, "the email holds the confirmation link"
    return found.group(1)


def test_the_form_shows_the_unticked_disclosure_and_privacy_link(client):
    page = client.get("/join").text
    assert DISCLOSURE.replace("&", "&amp;") in page
    assert 'name="sms_consent" value="yes">' in page and "checked" not in page
    assert 'href="https://spinaldecompressionla.com/privacy"' in page
    spanish = client.get("/join?lang=es")
    assert spanish.headers["content-language"] == "es"
    assert "Acepto recibir mensajes de texto promocionales" in spanish.text


def test_a_valid_sign_up_opts_nothing_in_and_sends_both_confirmations(
    nurture_app, client, frozen_clock, channel
):
    response = _sign_up(client, frozen_clock)
    assert response.status_code == 200 and "confirm" in response.text
    [contact] = _contacts(nurture_app)
    assert (contact.email, contact.phone) == (EMAIL, PHONE)
    assert contact.email_consent is None and contact.sms_consent is None
    assert _ledger(nurture_app, "email") == [] and _ledger(nurture_app, "sms") == []
    [email] = channel.emails
    assert email.to == EMAIL and "1234 Wilshire Blvd" in email.text
    assert email.message_id < 0  # no campaign message
    [text] = channel.texts
    assert text.to == PHONE and text.body.startswith("Spinal Decompression LA: Reply YES")
    assert DISCLOSURE in text.body


def test_clicking_the_link_opts_the_email_in_with_the_evidence(
    nurture_app, client, frozen_clock, channel
):
    _sign_up(client, frozen_clock)
    link = _link(channel)
    page = client.get(link)
    assert page.status_code == 200 and '<form method="post">' in page.text
    assert _ledger(nurture_app, "email") == []  # a GET (a mail scanner) confirms nothing
    frozen_clock.advance(minutes=10)
    clicked = client.post(link, headers={"User-Agent": "Phone mail app"})
    assert clicked.status_code == 200 and "confirmed" in clicked.text
    [contact] = _contacts(nurture_app)
    assert contact.email_consent == ConsentStatus.OPTED_IN
    assert contact.sms_consent is None  # the phone confirms by its own YES
    [event] = _ledger(nurture_app, "email")
    proof = json.loads(event.evidence)
    assert "Send me back-pain tips" in proof["form_text"]
    assert proof["form_url"] == "http://127.0.0.1:8000/join?lang=en"
    assert proof["ip"] == "testclient" and proof["user_agent"] == UA
    assert proof["signed_up_at"] == "2026-12-01T18:00:05+00:00"
    assert proof["confirmed_at"] == "2026-12-01T18:10:05+00:00"
    assert proof["confirmed_ip"] == "testclient"
    assert proof["confirmed_user_agent"] == "Phone mail app"
    assert event.occurred_at.replace(tzinfo=None) == frozen_clock().replace(tzinfo=None)
    again = client.post(link)  # a second click changes nothing
    assert again.status_code == 200 and len(_ledger(nurture_app, "email")) == 1


def test_a_tampered_or_expired_confirmation_link_confirms_nothing(
    nurture_app, client, frozen_clock, channel
):
    _sign_up(client, frozen_clock)
    link = _link(channel)
    assert client.post(link[:-2] + "xx").status_code == 404
    frozen_clock.advance(days=8)
    assert client.get(link).status_code == 404
    assert client.post(link).status_code == 404
    assert _ledger(nurture_app, "email") == []


def test_the_honeypot_is_thanked_and_ignored(nurture_app, client, frozen_clock, channel):
    response = _sign_up(client, frozen_clock, website="http://spam.example")
    assert response.status_code == 200
    assert _contacts(nurture_app) == [] and channel.emails == [] and channel.texts == []


def test_too_fast_too_old_and_tampered_forms_are_refused_kindly(
    nurture_app, client, frozen_clock, channel
):
    fast = _sign_up(client, frozen_clock, wait=1)
    assert fast.status_code == 400 and "quicker than we expected" in fast.text
    old = _sign_up(client, frozen_clock, wait=3601)
    assert old.status_code == 400 and "expired" in old.text
    token = _token(client.get("/join").text)
    frozen_clock.advance(seconds=5)
    forged = client.post("/join", data=_fields(token[:-3] + "abc"))
    assert forged.status_code == 400 and "could not read" in forged.text
    missing = client.post("/join", data=_fields(""))
    assert missing.status_code == 400
    assert _token(forged.text) != ""  # each refusal offers a fresh form
    assert _contacts(nurture_app) == [] and channel.emails == []


def test_over_the_rate_limit_is_refused(nurture_app, client, frozen_clock, channel):
    for n in range(5):
        assert (
            _sign_up(
                client, frozen_clock, email=f"p{n}@example.com", phone="", sms_consent=""
            ).status_code
            == 200
        )
    over = _sign_up(client, frozen_clock, email="p9@example.com", phone="", sms_consent="")
    assert over.status_code == 429 and "several sign-ups" in over.text
    assert len(_contacts(nurture_app)) == 5 and len(channel.emails) == 5
    frozen_clock.advance(hours=1)
    assert (
        _sign_up(client, frozen_clock, email="p9@example.com", phone="", sms_consent="").status_code
        == 200
    )


def test_unticked_box_sends_no_text_and_spanish_form_speaks_spanish(
    nurture_app, client, frozen_clock, channel
):
    fields = {"sms_consent": ""}
    response = _sign_up(client, frozen_clock, lang="es", **fields)
    assert response.status_code == 200 and "Casi listo" in response.text
    assert channel.texts == []
    [email] = channel.emails
    assert "Confirme su correo" in email.subject
    [contact] = _contacts(nurture_app)
    assert contact.language == "es" and contact.phone == PHONE


def test_a_bad_address_shows_the_form_again(nurture_app, client, frozen_clock):
    response = _sign_up(client, frozen_clock, email="not-an-address")
    assert response.status_code == 400 and "check your email address" in response.text
    assert _contacts(nurture_app) == []


def test_unconfirmed_sign_ups_are_purged_after_n_days(nurture_app, client, frozen_clock, channel):
    _sign_up(client, frozen_clock, email="late@example.com", phone="", sms_consent="")
    _sign_up(client, frozen_clock, email="kept@example.com", phone="", sms_consent="")
    client.post(_link(channel))  # the second one confirms
    with transaction(nurture_app.sessions) as session:
        assert purge_unconfirmed(session, now=frozen_clock() + timedelta(days=6), days=7) == 0
    frozen_clock.advance(days=7, seconds=1)
    with transaction(nurture_app.sessions) as session:
        assert purge_unconfirmed(session, now=frozen_clock(), days=7) == 1
    assert [c.email for c in _contacts(nurture_app)] == ["kept@example.com"]
    with transaction(nurture_app.sessions) as session:
        kinds = list(
            session.scalars(select(Event.kind).where(Event.kind.in_((PENDING, CONFIRMED))))
        )
    assert kinds == [CONFIRMED]


def test_every_workers_clock_purges_unconfirmed_sign_ups_hourly(nurture_app, client, frozen_clock):
    """Nobody has to remember a cron job: the worker's clock runs the same purge."""
    _sign_up(client, frozen_clock, email="late@example.com", phone="", sms_consent="")
    engine_clock = nurture_app.engine_clock()
    try:
        purge = engine_clock.ticks["purge-signups"]
        purge()
        assert [c.email for c in _contacts(nurture_app)] == ["late@example.com"]
        frozen_clock.advance(days=nurture_app.settings.signup.unconfirmed_days, seconds=1)
        purge()
        assert _contacts(nurture_app) == []
    finally:
        engine_clock.scheduler.remove_all_jobs()
