"""Log masking (core.redact) and inbound keyword classification, with property tests."""

from __future__ import annotations

import logging

from hypothesis import given
from hypothesis import strategies as st

from core.redact import RedactingFilter, mask_address, mask_email, mask_phone, redact
from web.webhooks.keywords import Intent, classify

LOCAL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._+", min_size=2, max_size=20)
DOMAIN = st.from_regex(r"[a-z]{2,10}\.(com|org|net|la)", fullmatch=True)


def test_masks():
    assert mask_email("maria.lopez@example.com") == "m***@example.com"
    assert mask_phone("+13105550102") == "+1******0102"
    assert mask_address("+13105550102") == "+1******0102"
    assert mask_address("a@b.co") == "a***@b.co"
    assert mask_phone(None) == "-" and mask_phone("12") == "***"


@given(LOCAL.filter(lambda s: s[0].isalnum()), DOMAIN, st.text(max_size=20))
def test_redact_never_leaves_a_full_email(local, domain, noise):
    address = f"{local}@{domain}"
    cleaned = redact(f"{noise} sent to {address} {noise}")
    assert address not in cleaned


@given(st.from_regex(r"\+1[2-9]\d{9}", fullmatch=True), st.sampled_from(["", " ", "to:", "("]))
def test_redact_never_leaves_a_full_phone(number, before):
    assert number not in redact(f"texted {before}{number} today")
    assert number[-4:] in redact(f"texted {before}{number} today")


def test_filter_masks_formatted_records():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "to %s and %s", None, None)
    record.args = ("pat@example.com", "+13105550102")
    RedactingFilter().filter(record)
    assert record.getMessage() == "to p***@example.com and +1******0102"


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
