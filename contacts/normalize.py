"""Addresses in one canonical form: E.164 phones (phonenumbers) and normalised emails.

Both libraries are the reference; the two speed-ups below return exactly what they would
(tests/contacts/test_normalize.py checks this with hypothesis), because an import of a million
rows spends most of its time here:

- email-validator spends two thirds of each call checking the domain (IDNA/UTS-46 rules), a pure
  function of the domain, and a contact list has few distinct domains: that check is memoised.
- an address that is plainly ASCII ("maria.lopez+web@example.com": dot-atom local part, letters,
  digits, dots and hyphens after the @, not long) skips email-validator's character-by-character
  split, which cannot find anything to unquote or strip in it, and goes straight to the same
  memoised domain check.
- phonenumbers.parse is half the cost of a phone; a plainly written North American number
  ("(310) 555-0102", "+1 213.555.0101") is built directly and still validated by phonenumbers.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from functools import lru_cache
from zoneinfo import available_timezones

import email_validator
import phonenumbers
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import ATEXT
from phonenumbers import timezone as phone_timezone

from core.errors import InputError

DEFAULT_REGION = "US"

# The package re-exports the function under the submodule's name, so fetch the module itself.
_email_validator_module = importlib.import_module("email_validator.validate_email")
_check_domain = _email_validator_module.validate_email_domain_name
if not hasattr(_check_domain, "cache_info"):
    _email_validator_module.validate_email_domain_name = lru_cache(maxsize=4096)(_check_domain)  # type: ignore[assignment]

#: A NANP number written plainly: optional +1/1, area code (maybe in brackets), 7 digits.
_PLAIN_NANP = re.compile(
    r"\s*(?:\+?1[\s.-]?)?\(?([2-9]\d{2})\)?[\s.-]?([2-9]\d{2})[\s.-]?(\d{4})\s*\Z"
)


#: What email-validator accepts as an ASCII dot-atom local part, an @, then an ASCII domain.
_PLAIN_EMAIL = re.compile(rf"([{ATEXT}]+(?:\.[{ATEXT}]+)*)@([A-Za-z0-9.-]+)\Z")
#: Below every length limit email-validator checks after the parts (254 for the address).
_PLAIN_EMAIL_MAX = 200


def normalize_email(raw: str) -> str:
    """Validate syntax (no DNS) and return the normalised address; InputError if invalid."""
    text = raw.strip()
    plain = _PLAIN_EMAIL.match(text) if len(text) <= _PLAIN_EMAIL_MAX else None
    try:
        if plain:
            # validate_email would find the same two parts, accept the local part as it is
            # (NFC leaves ASCII alone) and normalise the domain with this very call.
            local, domain = plain.groups()
            checked = _email_validator_module.validate_email_domain_name(
                domain,
                test_environment=email_validator.TEST_ENVIRONMENT,
                globally_deliverable=email_validator.GLOBALLY_DELIVERABLE,
            )
            return f"{local}@{checked['domain']}".lower()
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InputError(f"invalid email: {exc}") from None
    return result.normalized.lower()


def _parse_candidate(raw: str, region: str) -> phonenumbers.PhoneNumber:
    plain = _PLAIN_NANP.match(raw) if region in ("US", "CA") else None
    if plain:
        return phonenumbers.PhoneNumber(
            country_code=1, national_number=int("".join(plain.groups()))
        )
    try:
        return phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException as exc:
        raise InputError(f"invalid phone: {exc}") from None


def parse_phone(raw: str, region: str = DEFAULT_REGION) -> phonenumbers.PhoneNumber:
    """A valid phonenumbers.PhoneNumber; InputError if the text is not a valid number."""
    number = _parse_candidate(raw, region)
    if not phonenumbers.is_valid_number(number):
        raise InputError("invalid phone: not a valid number")
    return number


def normalize_phone(raw: str, region: str = DEFAULT_REGION) -> str:
    """Parse a phone number and return E.164; InputError if it is not a valid number."""
    number = parse_phone(raw, region)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def timezone_from_phone(e164: str) -> str | None:
    """The phone's time zone when phonenumbers knows exactly one, else None."""
    zones = phone_timezone.time_zones_for_number(phonenumbers.parse(e164, None))
    return _single_zone(zones)


def phone_and_zone(raw: str, region: str = DEFAULT_REGION) -> tuple[str, str | None]:
    """E.164 and its time zone (as timezone_from_phone) with one number-type lookup, not three.

    is_valid_number(n) is number_type(n) != UNKNOWN, and time_zones_for_number(n) is a prefix
    lookup once the type is known to be geographical; both recompute the type (the costly part:
    matching every NANP region's patterns), so it is computed once here.
    """
    number = _parse_candidate(raw, region)
    kind = phonenumbers.number_type(number)
    if kind == phonenumbers.PhoneNumberType.UNKNOWN:
        raise InputError("invalid phone: not a valid number")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if phonenumbers.is_number_type_geographical(kind, number.country_code):
        zones = phone_timezone.time_zones_for_geographical_number(number)
    else:
        zones = phone_timezone._country_level_time_zones_for_number(number)
    return e164, _single_zone(zones)


def _single_zone(zones: Iterable[str]) -> str | None:
    known = [zone for zone in zones if zone != "Etc/Unknown"]
    return known[0] if len(known) == 1 else None


@lru_cache(maxsize=1)
def _iana_zones() -> dict[str, str]:
    return {zone.lower(): zone for zone in available_timezones()}


def normalize_timezone(raw: str) -> str:
    """An IANA zone name in its canonical spelling ("america/los_angeles" is accepted)."""
    zone = _iana_zones().get(raw.strip().lower())
    if zone is None:
        raise InputError(
            f"unknown time zone {raw.strip()!r} (use an IANA name like America/Los_Angeles)"
        )
    return zone
