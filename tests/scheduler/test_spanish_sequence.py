"""A contact imported with `language = es` receives the whole spasm-relief sequence in Spanish,
links and pages included; an English contact beside them gets it in English; a step without a
Spanish file falls back to English (and validate names it)."""

from __future__ import annotations

import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from campaigns import lifecycle
from campaigns.definitions import load_sequence
from campaigns.validation import validate_sequence
from contacts.importer import import_csv
from nurture.app import NurtureApp
from providers.base import OutgoingEmail, OutgoingSms
from providers.memory import MemoryChannel
from storage.db import transaction
from templates import TEMPLATES_DIR
from templates.renderer import TemplateRenderer
from web.app import create_app

PROOF = 'Web form: "I agree to receive marketing texts" (checked)'
CSV = (
    "first_name,email,phone,idioma,email_consent,sms_consent,sms_consent_evidence\n"
    f"Lucia,lucia@example.com,(310) 555-0101,Español,yes,yes,{PROOF}\n"
    f"Pat,pat@example.com,(310) 555-0102,,yes,yes,{PROOF}\n"
)
SPANISH_SUBJECTS = [
    "Lucia, ¿qué le pueden estar diciendo los espasmos de espalda?",
    "El ciclo de dolor-espasmo-dolor, y por qué cuesta tanto romperlo",
    "Cómo funciona la descompresión espinal, suave y sin cirugía",
    "Cómo es una primera visita con nosotros",
    "Una invitación abierta, para cuando usted quiera",
]


def _run_the_whole_sequence(app: NurtureApp, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(CSV, encoding="utf-8")
    summary = import_csv(
        app.sessions, path, "website-form", clock=app.clock, default_timezone="America/Los_Angeles"
    )
    assert (summary.inserted, summary.rejected) == (2, 0)
    with transaction(app.sessions) as session:
        lifecycle.launch(
            session, load_sequence("spasm-relief"), now=app.clock(), settings=app.settings
        )
    for _ in range(24 * 26):  # hour by hour through the three weeks and some
        app.planner.tick()
        app.dispatcher.tick()
        app.clock.advance(hours=1)  # type: ignore[attr-defined]  # the tests' FrozenClock


def _for(
    channel: MemoryChannel, email: str, phone: str
) -> tuple[list[OutgoingEmail], list[OutgoingSms]]:
    return (
        [sent for sent in channel.emails if sent.to == email],
        [text for text in channel.texts if text.to == phone],
    )


def test_a_spanish_contact_gets_every_step_in_spanish_with_spanish_pages(
    nurture_app: NurtureApp, channel: MemoryChannel, tmp_path: Path
) -> None:
    _run_the_whole_sequence(nurture_app, tmp_path)

    emails, texts = _for(channel, "lucia@example.com", "+13105550101")
    assert [email.subject for email in emails] == SPANISH_SUBJECTS
    for email in emails:
        assert '<html lang="es">' in email.html and "Recibe este correo porque usted" in email.html
        assert "Cancelar la suscripción:" in email.text and "O llame al 888-20-DECOM." in email.text
        assert "Spinal Decompression LA, 1234 Wilshire Blvd" in email.text
        assert "You are receiving" not in email.text + email.html
    assert len(texts) == 3  # with the reminder: nobody clicked the first-visit email's link
    for text in texts:
        assert text.body.startswith("Spinal Decompression LA: Hola, Lucia.")
        assert text.body.endswith("Responda STOP o PARAR para darse de baja.")
        assert text.segments == 2  # GSM-7 (no á, í, ó or ú in the Spanish texts)

    english, english_texts = _for(channel, "pat@example.com", "+13105550102")
    assert len(english) == 5 and len(english_texts) == 3
    assert english[0].subject == "Pat, what back spasms may be telling you"
    assert all(text.body.endswith("Reply STOP to opt out.") for text in english_texts)

    # the links in a Spanish email: the booking link redirects, the pages speak Spanish
    client = TestClient(create_app(nurture_app), follow_redirects=False)
    base = nurture_app.settings.web.public_base_url
    unsubscribe = emails[0].headers["List-Unsubscribe"].strip("<>").removeprefix(base)
    page = client.get(unsubscribe)
    assert page.status_code == 200 and "¿Dejar de recibir correos electrónicos?" in page.text
    preferences = next(
        line.split(": ", 1)[1]
        for line in emails[0].text.splitlines()
        if line.startswith("Preferencias de correos y mensajes de texto: ")
    )
    assert "Sus preferencias de mensajes" in client.get(preferences.removeprefix(base)).text
    booking = next(
        line.split(": ", 1)[1]
        for line in emails[0].text.splitlines()
        if line.startswith("Agende su consulta: ")
    )
    redirect = client.get(booking.removeprefix(base))
    assert redirect.status_code == 302
    assert redirect.headers["location"].startswith("https://spinaldecompressionla.com/book?")


def test_a_missing_spanish_file_falls_back_to_english_and_validate_names_it(
    nurture_app: NurtureApp, channel: MemoryChannel, tmp_path: Path
) -> None:
    root = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (root / "spasm-relief" / "es" / "03-cycle.txt").unlink()  # one part of one email
    renderer = TemplateRenderer(root)
    nurture_app.renderer = renderer  # the app's composer reads the copy

    report = validate_sequence(load_sequence("spasm-relief"), nurture_app.settings, renderer)
    assert report.untranslated == {"es": ["cycle"]}
    assert any(
        "step 3 (cycle, email) has no Español (es) translation" in warning
        and "spasm-relief/es/03-cycle.txt" in warning
        for warning in report.warnings
    ), report.warnings
    assert report.problems == []

    _run_the_whole_sequence(nurture_app, tmp_path)
    emails, _ = _for(channel, "lucia@example.com", "+13105550101")
    subjects = [email.subject for email in emails]
    # the whole step in English (no Spanish subject over an English body), the others Spanish
    assert subjects[1] == "The pain-spasm-pain cycle, and why it is hard to break"
    assert "You are receiving this email because you asked" in emails[1].text
    assert subjects[:1] + subjects[2:] == SPANISH_SUBJECTS[:1] + SPANISH_SUBJECTS[2:]
