"""Recipient pages in the contact's language, with an English | Español switch that keeps the
signed token; the preference page sets the language of our messages."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import Contact


def _set_language(app: NurtureApp, contact_id: int, language: str) -> None:
    with transaction(app.sessions) as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None
        contact.language = language


def _contact(app: NurtureApp, contact_id: int) -> Contact:
    with transaction(app.sessions, immediate=False) as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None
        return contact


def test_a_spanish_contact_sees_the_unsubscribe_page_in_spanish_and_can_switch(
    nurture_app: NurtureApp, make_contact: Any, client: TestClient, signing: Any
) -> None:
    contact_id = make_contact()
    _set_language(nurture_app, contact_id, "es")
    path = signing.path_of(nurture_app.signer.unsubscribe_url(contact_id, "email"))

    spanish = client.get(path)
    assert spanish.status_code == 200
    assert '<html lang="es">' in spanish.text
    assert "¿Dejar de recibir correos electrónicos?" in spanish.text
    assert f'href="{path}?lang=en"' in spanish.text  # the switch: same token, other language
    assert "?lang=es" in spanish.text  # the preferences link keeps the language

    english = client.get(f"{path}?lang=en")
    assert '<html lang="en">' in english.text and "Unsubscribe from emails?" in english.text
    assert f'href="{path}?lang=es"' in english.text

    done = client.post(f"{path}?lang=es")
    assert done.status_code == 200 and "Su suscripción está cancelada" in done.text
    assert _contact(nurture_app, contact_id).email_consent == "opted_out"


def test_an_english_contact_gets_english_pages_unless_the_switch_says_spanish(
    nurture_app: NurtureApp, make_contact: Any, client: TestClient, signing: Any
) -> None:
    contact_id = make_contact()
    path = signing.path_of(nurture_app.signer.unsubscribe_url(contact_id, "email"))
    assert "Unsubscribe from emails?" in client.get(path).text
    # the browser's language does not outrank the contact's own
    assert "Unsubscribe from emails?" in client.get(path, headers={"Accept-Language": "es"}).text
    assert "¿Dejar de recibir correos electrónicos?" in client.get(f"{path}?lang=es").text


def test_the_preference_page_switches_language_and_sets_the_contacts_language(
    nurture_app: NurtureApp, make_contact: Any, client: TestClient, signing: Any
) -> None:
    contact_id = make_contact(phone="+13105550123", sms=True)
    path = signing.path_of(nurture_app.signer.preferences_url(contact_id))

    english = client.get(path)
    assert "Your message preferences" in english.text
    assert 'name="language" value="en" checked' in english.text
    shown = client.get(f"{path}?lang=es")
    assert "Sus preferencias de mensajes" in shown.text and "Mensajes de texto a" in shown.text
    assert _contact(nurture_app, contact_id).language == "en"  # looking changes nothing

    saved = client.post(path, data={"email": "yes", "sms": "yes", "language": "es"})
    assert saved.status_code == 200
    assert "Guardado." in saved.text and '<html lang="es">' in saved.text
    assert 'name="language" value="es" checked' in saved.text
    assert _contact(nurture_app, contact_id).language == "es"
    # from now on the pages open in Spanish without the switch
    assert "Sus preferencias de mensajes" in client.get(path).text

    client.post(path, data={"email": "yes", "sms": "yes", "language": "klingon"})
    assert _contact(nurture_app, contact_id).language == "es"  # an unknown value is ignored
    client.post(path, data={"email": "yes", "sms": "yes", "language": "en"})
    assert _contact(nurture_app, contact_id).language == "en"


def test_link_errors_follow_the_switch_then_the_browser(client: TestClient) -> None:
    english = client.get("/l/not-a-token")
    assert english.status_code == 404 and "This link is not valid any more" in english.text
    browser = client.get("/l/not-a-token", headers={"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"})
    assert browser.status_code == 404 and "Este enlace ya no es válido" in browser.text
    assert 'href="/l/not-a-token?lang=en"' in browser.text
    switched = client.get("/l/not-a-token?lang=es")
    assert "Este enlace ya no es válido" in switched.text
    assert "Este enlace" in client.get("/p/nonsense?lang=es").text
