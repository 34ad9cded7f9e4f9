"""Masking for logs: no log line carries a full email address or phone number.

Patients' addresses are personal data (and, beside a clinic's name, health-adjacent), so logs show
only enough to tell two people apart: `m***@example.com`, `+1******0102`. Call the mask helpers
where an address is logged on purpose; `RedactingFilter` catches the ones logged by accident.
"""

from __future__ import annotations

import logging
import re

EMAIL = re.compile(r"[\w.+'%-]+@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
# E.164 (+ and 7-15 digits) or a North American number written with separators.
PHONE = re.compile(r"\+\d{7,15}\b|(?<![\w+])\(?\d{3}\)?[-. ]\d{3}[-. ]\d{4}\b")


def mask_email(address: str | None) -> str:
    """`maria.lopez@example.com` -> `m***@example.com`: the domain helps debugging, no more."""
    if not address:
        return "-"
    local, at, domain = address.strip().rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def mask_phone(number: str | None) -> str:
    """`+13105550102` -> `+1******0102`: country code and the last four digits only."""
    if not number:
        return "-"
    digits = re.sub(r"\D", "", number)
    if len(digits) < 7:
        return "***"
    country = "+" + digits[0] if number.strip().startswith("+") else ""
    hidden = len(digits) - 4 - (1 if country else 0)
    return f"{country}{'*' * hidden}{digits[-4:]}"


def mask_address(address: str | None) -> str:
    """An email or a phone number, whichever it is."""
    if address and "@" in address:
        return mask_email(address)
    return mask_phone(address)


def redact(text: str) -> str:
    """Mask every email address and phone number found in free text."""
    text = EMAIL.sub(lambda match: mask_email(match.group(0)), text)
    return PHONE.sub(lambda match: mask_phone(match.group(0)), text)


class RedactingFilter(logging.Filter):
    """A handler filter that masks addresses in the rendered message (and drops the args)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Attach one RedactingFilter to every handler of `logger` (default: the root logger)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(existing, RedactingFilter) for existing in handler.filters):
            handler.addFilter(RedactingFilter())
