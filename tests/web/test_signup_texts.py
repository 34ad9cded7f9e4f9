"""The sign-up texts (the YES prompt, the opt-in confirmation, the email thanks) stay GSM-7 and
two parts at most in both languages, and say what CTIA asks of them."""

from __future__ import annotations

import pytest

from core.settings import Settings, load_settings
from templates.sms_segments import GSM7, sms_info
from web.join import confirm_prompt
from web.text_join import confirmed_reply, thanks_for_email

#: What each language's opt-in texts must say (CTIA Messaging Principles, 5.1.1 and 5.1.2).
REQUIRED = {
    "en": ("Spinal Decompression LA", "4 msgs/mo", "Msg & data rates may apply", "STOP", "HELP"),
    "es": (
        "Spinal Decompression LA",
        "4 m",
        "tarifas de mensajes y datos",
        "Responda STOP para cancelar, HELP/AYUDA para ayuda",
    ),
}


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings()


def _texts(settings: Settings, language: str) -> dict[str, str]:
    return {
        "prompt": confirm_prompt(settings, language),
        "confirmed": confirmed_reply(settings, language, ask_email=False),
        "confirmed, asking for email": confirmed_reply(settings, language, ask_email=True),
        "email thanks": thanks_for_email(settings, language),
    }


@pytest.mark.parametrize("language", ["en", "es"])
def test_every_sign_up_text_is_gsm7_in_at_most_two_parts(settings: Settings, language: str) -> None:
    for name, text in _texts(settings, language).items():
        info = sms_info(text)
        assert (info.encoding, info.ucs2_characters) == (GSM7, ()), name
        assert info.segments <= 2, f"{name}: {info.segments} parts"


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_prompt_and_the_confirmation_say_what_ctia_asks(
    settings: Settings, language: str
) -> None:
    texts = _texts(settings, language)
    for name in ("prompt", "confirmed", "confirmed, asking for email"):
        for words in REQUIRED[language]:
            assert words in texts[name], f"{name} lacks {words!r}"
    assert texts["confirmed, asking for email"].endswith(
        "Responda con su correo." if language == "es" else "Reply with your email address."
    )


def test_the_spanish_prompt_is_the_clinics_disclosure_without_the_accents_gsm7_lacks(
    settings: Settings,
) -> None:
    prompt = confirm_prompt(settings, "es")
    assert "en este numero, hasta 4 msjs/mes" in prompt and "condicion de compra" in prompt
    assert "número" in settings.clinic.sms_disclosure_es  # the form still shows it accented


def test_a_disclosure_with_an_emoji_stays_as_written(settings: Settings) -> None:
    """Smart Encoding transliterates only when that leaves GSM-7: never a changed emoji."""
    clinic = settings.clinic.model_copy(update={"sms_disclosure": "Texts from us 🙂 " * 4})
    prompt = confirm_prompt(settings.model_copy(update={"clinic": clinic}), "en")
    assert "🙂" in prompt and sms_info(prompt).encoding != GSM7
