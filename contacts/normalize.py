"""Addresses in one canonical form: E.164 phones (phonenumbers) and normalised emails."""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import timezone as phone_timezone

from nurture.errors import InputError

DEFAULT_REGION = "US"


def normalize_email(raw: str) -> str:
    """Validate syntax (no DNS) and return the normalised address; InputError if invalid."""
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InputError(f"invalid email: {exc}") from None
    return result.normalized.lower()


def normalize_phone(raw: str, region: str = DEFAULT_REGION) -> str:
    """Parse a phone number and return E.164; InputError if it is not a valid number."""
    try:
        number = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException as exc:
        raise InputError(f"invalid phone: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise InputError("invalid phone: not a valid number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def timezone_from_phone(e164: str) -> str | None:
    """The phone's time zone when phonenumbers knows exactly one, else None."""
    zones = phone_timezone.time_zones_for_number(phonenumbers.parse(e164, None))
    known = [zone for zone in zones if zone != "Etc/Unknown"]
    return known[0] if len(known) == 1 else None
