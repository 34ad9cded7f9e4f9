"""Inbound keyword classification (CTIA keywords, TCPA free-text revocation), property-tested;
the answers, in English and Spanish. The table of real replies is in test_revocation.py."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contacts.keywords import Classification, Intent, Language, classify, reply_to
from core.settings import ClinicSettings, load_settings
from templates.sms_segments import GSM7, sms_info

EN, ES = Language.ENGLISH, Language.SPANISH


@given(
    st.sampled_from(
        ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "OPT OUT"]
    ),
    st.sampled_from(["", " ", "  ", "\n"]),
    st.sampled_from(["", ".", "!", "!!", " ."]),
    st.booleans(),
)
def test_stop_keywords_whatever_the_case_and_punctuation(word, space, punctuation, lower):
    text = f"{space}{word.lower() if lower else word.title()}{punctuation}{space}"
    assert classify(text) == Classification(Intent.STOP, EN)


@given(
    st.sampled_from(["PARAR", "ALTO", "CANCELAR", "BASTA", "NO MÁS", "NO MAS", "PARE", "BAJA"]),
    st.sampled_from(["", " ", "¡", "\n"]),
    st.sampled_from(["", ".", "!", "!!", " ."]),
    st.booleans(),
)
def test_spanish_stop_keywords_with_or_without_accents(word, space, punctuation, lower):
    text = f"{space}{word.lower() if lower else word.title()}{punctuation}{space}"
    assert classify(text) == Classification(Intent.STOP, ES)


def test_a_lone_everyday_word_is_a_keyword_only_as_the_whole_message():
    assert classify("Cancel").intent == Intent.STOP
    assert classify("Cancel my appointment").intent == Intent.OTHER
    assert classify("Cancelar").intent == Intent.STOP
    assert classify("Cancelar mi cita").intent == Intent.OTHER
    assert classify("Alto").intent == Intent.STOP
    assert classify("Alto dolor").intent == Intent.OTHER
    assert (
        classify("yes").intent == Intent.START and classify("Yes, Tuesday").intent == Intent.OTHER
    )
    assert (
        classify("Sí").intent == Intent.START and classify("Sí, el martes").intent == Intent.OTHER
    )


@given(st.text(max_size=200), st.one_of(st.none(), st.text(max_size=10)))
def test_classify_never_fails(text, opt_out_type):
    heard = classify(text, opt_out_type)
    assert heard.intent in set(Intent) and heard.language in set(Language)


@pytest.fixture(scope="module")
def clinic() -> ClinicSettings:
    return load_settings().clinic


def test_each_keyword_gets_its_one_answer(clinic: ClinicSettings) -> None:
    stop = reply_to(Classification(Intent.STOP, EN), clinic)
    assert stop and "unsubscribed" in stop == reply_to(Classification(Intent.REVOKE, EN), clinic)
    assert "START to resubscribe" in stop
    assert "subscribed again" in (reply_to(Classification(Intent.START, EN), clinic) or "")
    help_text = reply_to(Classification(Intent.HELP, EN), clinic)
    assert help_text and clinic.name in help_text and "STOP" in help_text
    assert reply_to(Classification(Intent.OTHER, EN), clinic) is None
    assert reply_to(Classification(Intent.OTHER, ES), clinic) is None
    custom = clinic.model_copy(update={"sms_help_text": "Call us."})
    assert reply_to(Classification(Intent.HELP, EN), custom) == "Call us."


def test_spanish_answers(clinic: ClinicSettings) -> None:
    stop = reply_to(Classification(Intent.STOP, ES), clinic)
    assert stop == reply_to(Classification(Intent.REVOKE, ES), clinic)
    assert stop and "no recibira mas mensajes" in stop and "COMENZAR" in stop
    start = reply_to(Classification(Intent.START, ES), clinic)
    assert start and "suscrito de nuevo" in start and "PARAR" in start
    help_text = reply_to(Classification(Intent.HELP, ES), clinic)
    assert help_text and clinic.name in help_text and clinic.phone_display in help_text
    assert "PARAR" in help_text and "tarifas" in help_text


@pytest.mark.parametrize("language", list(Language))
@pytest.mark.parametrize("intent", [Intent.STOP, Intent.START, Intent.HELP])
def test_every_answer_is_one_gsm7_segment(
    clinic: ClinicSettings, intent: Intent, language: Language
) -> None:
    """An accent outside GSM-7 (á, í, ó, ú) would make the answer UCS-2, 70 characters a part."""
    answer = reply_to(Classification(intent, language), clinic)
    assert answer
    info = sms_info(answer)
    assert (info.encoding, info.segments) == (GSM7, 1), answer
