"""A text in Spanish that is a keyword or a plain request to stop sets the contact's language to
Spanish; English keywords and texts that are neither leave it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import Contact

PHONE = "+13105550123"


def _inbound(body: str, sid: str) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "AccountSid": "AC" + "a" * 32,
        "From": PHONE,
        "To": "+13105550100",
        "Body": body,
    }


def _language(app: NurtureApp, contact_id: int) -> str:
    with transaction(app.sessions, immediate=False) as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None
        return contact.language


@pytest.mark.parametrize("body", ["PARAR", "¡Alto!", "AYUDA", "ya no me manden mensajes", "Sí"])
def test_a_spanish_keyword_or_revocation_sets_spanish(
    body: str, nurture_app: NurtureApp, make_contact: Any, client: TestClient, signing: Any
) -> None:
    contact_id = make_contact(phone=PHONE, sms=True)
    assert _language(nurture_app, contact_id) == "en"
    response = signing.twilio_post(client, "/webhooks/twilio/inbound", _inbound(body, "SM1"))
    assert response.status_code == 200
    assert _language(nurture_app, contact_id) == "es"


@pytest.mark.parametrize("body", ["STOP", "HELP", "¿Puedo cambiar mi cita para mañana?"])
def test_english_keywords_and_other_texts_leave_the_language(
    body: str, nurture_app: NurtureApp, make_contact: Any, client: TestClient, signing: Any
) -> None:
    contact_id = make_contact(phone=PHONE, sms=True)
    signing.twilio_post(client, "/webhooks/twilio/inbound", _inbound(body, "SM1"))
    assert _language(nurture_app, contact_id) == "en"


def test_an_english_keyword_does_not_undo_a_spanish_contact(
    nurture_app: NurtureApp, make_contact: Any, client: TestClient, signing: Any
) -> None:
    contact_id = make_contact(phone=PHONE, sms=True)
    signing.twilio_post(client, "/webhooks/twilio/inbound", _inbound("AYUDA", "SM1"))
    signing.twilio_post(client, "/webhooks/twilio/inbound", _inbound("HELP", "SM2"))
    assert _language(nurture_app, contact_id) == "es"
