"""Inbound keyword classification (CTIA keywords, TCPA free-text revocation), property-tested."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from contacts.keywords import Intent, classify, reply_to


@given(
    st.sampled_from(
        ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"]
    ),
    st.sampled_from(["", " ", "  ", "\n"]),
    st.sampled_from(["", ".", "!", "!!", " ."]),
    st.booleans(),
)
def test_stop_keywords_whatever_the_case_and_punctuation(word, space, punctuation, lower):
    text = f"{space}{word.lower() if lower else word.title()}{punctuation}{space}"
    assert classify(text) == Intent.STOP


def test_keyword_families_and_free_text():
    assert classify("Start") == Intent.START and classify("unstop") == Intent.START
    assert classify("yes") == Intent.START
    assert classify("help") == Intent.HELP and classify("INFO?") == Intent.HELP
    for text in [
        "Please stop texting me",
        "stop sending these messages",
        "unsubscribe me please",
        "remove me from your list",
        "Don't text me again",
        "no more texts",
        "STOP please",
        "take me off this list",
    ]:
        assert classify(text) == Intent.REVOKE, text
    for text in [
        "Cancel my appointment",
        "My back pain won't stop",
        "end the pain",
        "Can I book Tuesday?",
        "Thanks!",
        "",
    ]:
        assert classify(text) == Intent.OTHER, text
    assert classify("arrêt", "STOP") == Intent.STOP
    assert classify("STOP", "START") == Intent.START  # Twilio's own classification wins


@given(st.text(max_size=200))
def test_classify_never_fails(text):
    assert classify(text) in set(Intent)


def test_each_keyword_gets_its_one_answer() -> None:
    from core.settings import load_settings

    clinic = load_settings().clinic
    assert "unsubscribed" in reply_to(Intent.STOP, clinic) == reply_to(Intent.REVOKE, clinic)
    assert "START to resubscribe" in reply_to(Intent.STOP, clinic)
    assert "subscribed again" in reply_to(Intent.START, clinic)
    help_text = reply_to(Intent.HELP, clinic)
    assert clinic.name in help_text and "STOP" in help_text
    assert reply_to(Intent.OTHER, clinic) is None
    custom = clinic.model_copy(update={"sms_help_text": "Call us."})
    assert reply_to(Intent.HELP, custom) == "Call us."
