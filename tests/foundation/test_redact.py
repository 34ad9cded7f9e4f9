"""Log masking (core.redact): no full address or number reaches a log, property-tested."""

from __future__ import annotations

import logging

from hypothesis import given
from hypothesis import strategies as st

from core.redact import RedactingFilter, mask_address, mask_email, mask_phone, redact

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
