"""Addresses in one canonical form: E.164 phones (phonenumbers) and normalised emails.

Both libraries are the reference and are reached through their public functions only. An import
of a million rows spends most of its time here, so:

- email-validator spends most of each call checking the domain (IDNA/UTS-46 rules), a pure
  function of the domain, and a contact list has few distinct domains. A plain ASCII address is
  checked in two calls of the public `validate_email`: its domain once per distinct domain
  (memoised, on a stand-in local part), and its local part on every row (on a stand-in domain
  literal, which skips the domain rules). The library accepts both halves; nothing is accepted
  without it. The only rule that spans both halves is the total length, so a long or non-ASCII
  address (whose normalised form may grow), or one with a second @, takes one whole call.
- phonenumbers.parse is half the cost of a phone; a plainly written North American number
  ("(310) 555-0102", "+1 213.555.0101") is built directly and still validated by phonenumbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from zoneinfo import available_timezones

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import timezone as phone_timezone

from core.errors import InputError

DEFAULT_REGION = "US"

#: A NANP number written plainly: optional +1/1, area code (maybe in brackets), 7 digits.
_PLAIN_NANP = re.compile(
    r"\s*(?:\+?1[\s.-]?)?\(?([2-9]\d{2})\)?[\s.-]?([2-9]\d{2})[\s.-]?(\d{4})\s*\Z"
)

#: Checked in halves up to this length, well below every limit email-validator checks on the
#: whole address (254 characters), so the halves' verdicts are the whole address's verdict.
_SPLIT_MAX = 200
#: What each half is checked beside: a local part and a domain literal the library accepts.
_STAND_IN_LOCAL = "postmaster"
_STAND_IN_DOMAIN = "[192.0.2.1]"  # RFC 5737 documentation address


def normalize_email(raw: str) -> str:
    """Validate syntax (no DNS) and return the normalised address; InputError if invalid."""
    text = raw.strip()
    local, at, domain = text.rpartition("@")
    try:
        if at and len(text) <= _SPLIT_MAX and text.isascii() and "@" not in local:
            # Local part first, as validate_email does, so an address wrong in both halves
            # gets the same message.
            local_part = validate_email(
                f"{local}@{_STAND_IN_DOMAIN}", check_deliverability=False, allow_domain_literal=True
            ).local_part
            return f"{local_part}@{_email_domain(domain)}".lower()
        return validate_email(text, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise InputError(f"invalid email: {exc}") from None


@lru_cache(maxsize=4096)
def _email_domain(domain: str) -> str:
    """email-validator's normalised form of a domain; EmailNotValidError (not kept) if invalid."""
    return validate_email(f"{_STAND_IN_LOCAL}@{domain}", check_deliverability=False).domain


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
    if phonenumbers.is_number_type_geographical(kind, number.country_code or 0):
        zones = phone_timezone.time_zones_for_geographical_number(number)
    else:  # rare (toll-free, non-geographic mobiles): the public call works the type out again
        zones = phone_timezone.time_zones_for_number(number)
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
