"""Phone and email normalisation: the fast paths agree with the reference libraries exactly
(email-validator's whole-address call, phonenumbers.parse)."""

from __future__ import annotations

from collections.abc import Callable

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given
from hypothesis import strategies as st

from contacts.normalize import (
    normalize_email,
    normalize_phone,
    normalize_timezone,
    phone_and_zone,
    timezone_from_phone,
)
from core.errors import InputError

FORMATS = ["({a}) {e}-{l}", "+1 {a} {e} {l}", "{a}.{e}.{l}", "{a}{e}{l}", "1-{a}-{e}-{l}",
           "+1{a}{e}{l}", " {a} {e} {l} ", "1 ({a}) {e}.{l}", "+1 ({a}){e}-{l}"]  # fmt: skip
nanp = st.builds(
    lambda fmt, a, e, line: fmt.format(a=a, e=e, l=f"{line:04d}"),
    st.sampled_from(FORMATS),
    st.integers(100, 999),
    st.integers(100, 999),
    st.integers(0, 9999),
)
phone_like = st.text(alphabet="0123456789 +-().xext#*", max_size=22)


def reference_phone(raw: str) -> str | None:
    """What phonenumbers itself says, with no shortcut."""
    try:
        number = phonenumbers.parse(raw.strip(), "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def ours(raw: str) -> str | None:
    try:
        return normalize_phone(raw)
    except InputError:
        return None


@given(nanp)
def test_plain_north_american_numbers_match_phonenumbers(raw: str) -> None:
    assert ours(raw) == reference_phone(raw)


@given(phone_like)
def test_any_phone_text_matches_phonenumbers(raw: str) -> None:
    assert ours(raw) == reference_phone(raw)


@given(st.one_of(nanp, phone_like, st.sampled_from(["+44 20 7946 0958", "+81 3-1234-5678"])))
def test_phone_and_zone_is_normalize_phone_plus_timezone_from_phone(raw: str) -> None:
    expected = ours(raw)
    if expected is None:
        with pytest.raises(InputError):
            phone_and_zone(raw)
        return
    assert phone_and_zone(raw) == (expected, timezone_from_phone(expected))


@given(nanp)
def test_e164_is_a_fixed_point(raw: str) -> None:
    e164 = ours(raw)
    if e164 is not None:
        assert e164.startswith("+1") and len(e164) == 12
        assert normalize_phone(e164) == e164


def test_known_numbers_and_zones() -> None:
    assert phone_and_zone("(310) 555-0102")[0] == "+13105550102"
    assert phone_and_zone("+1 212 555 0199")[1] == "America/New_York"
    assert phone_and_zone("+44 20 7946 0958") == ("+442079460958", "Europe/London")
    with pytest.raises(InputError, match="invalid phone"):
        normalize_phone("555-0102")  # seven digits: no area code
    with pytest.raises(InputError, match="invalid phone"):
        normalize_phone("call me")


def reference_email(raw: str) -> str | None:
    """email-validator on the whole address, in one call."""
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


def ours_email(raw: str) -> str | None:
    try:
        return normalize_email(raw)
    except InputError:
        return None


def outcome(check: Callable[[str], str], raw: str) -> str:
    """The address, or the error's message."""
    try:
        return check(raw)
    except InputError as exc:
        return str(exc)
    except EmailNotValidError as exc:
        return f"invalid email: {exc}"


def reference_outcome(raw: str) -> str:
    return outcome(
        lambda r: validate_email(r.strip(), check_deliverability=False).normalized.lower(), raw
    )


ATEXT_CHARS = "aZ09_!#$%&'*+-/=?^`{|}~."
plain_like = st.builds(
    lambda local, domain, pad: f"{pad}{local}@{domain}{pad}",
    st.text(alphabet=ATEXT_CHARS + '"(\\ é', min_size=0, max_size=70),
    st.one_of(
        st.sampled_from(["example.com", "EXAMPLE.org", "x.test", "localhost", "a..b.com",
                         "-a.com", "a-.com", "a.b", "x.example", "1.2.3.4", "a.c0m",
                         "xn--bcher-kva.de", "co", "b\u00fccher.de", "[127.0.0.1]",
                         "a" * 64 + ".com", "e.x.a.m.p.le.com"]),
        st.text(alphabet="aZ09.-", min_size=0, max_size=70),
    ),
    st.sampled_from(["", " ", "\t"]),
)  # fmt: skip


@given(plain_like)
def test_plain_ascii_addresses_give_email_validators_result_or_message(raw: str) -> None:
    assert outcome(normalize_email, raw) == reference_outcome(raw)


@given(st.emails())
def test_valid_emails_normalise_like_email_validator(raw: str) -> None:
    assert ours_email(raw) == reference_email(raw)


@given(st.text(max_size=40).map(lambda s: s.replace(" ", "@", 1)))
def test_any_text_normalises_like_email_validator(raw: str) -> None:
    assert ours_email(raw) == reference_email(raw)


@given(st.emails())
def test_normalised_email_is_lowercase_and_a_fixed_point(raw: str) -> None:
    normal = ours_email(raw)
    if normal is not None:
        assert normal == normal.lower()
        assert normalize_email(normal) == normal


def test_email_examples() -> None:
    assert normalize_email("  Maria.Lopez@Example.COM ") == "maria.lopez@example.com"
    assert normalize_email("pat@b\u00fccher.de") == "pat@b\u00fccher.de"  # one whole call
    for bad in [
        "maria at example.com",
        "a@b@example.com",
        "@example.com",
        "pat@",
        "pat@[127.0.0.1]",  # no domain literals, though the local part is checked beside one
        "pat@localhost",
        "Pat <pat@example.com>",
        "pat@" + "a" * 64 + ".com",
        "p" * 60 + "@" + ".".join(["d" * 60] * 4) + ".com",  # too long in all
    ]:
        with pytest.raises(InputError, match="invalid email"):
            normalize_email(bad)
    for bad in ["x..y@-bad.com", "a@b@example.com", '"a@b"@example.com', '"abc@example.com']:
        assert outcome(normalize_email, bad) == reference_outcome(bad)  # the same message


def test_time_zones_are_iana_names_in_their_own_spelling() -> None:
    assert normalize_timezone("america/los_angeles") == "America/Los_Angeles"
    with pytest.raises(InputError, match="unknown time zone"):
        normalize_timezone("PST")
