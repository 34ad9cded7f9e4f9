"""Exact SMS encoding and segment counting (GSM 03.38 and UCS-2), as carriers bill them.

GSM-7: 160 septets in a single message, 153 per part of a concatenated one (the UDH takes 7);
extension-table characters take two septets (escape + char) and are never split across parts.
UCS-2: 70 units single, 67 per part; a character outside the BMP is a surrogate pair (two units)
and is never split either. One character outside GSM-7 makes the whole message UCS-2.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM7 = "GSM-7"
UCS2 = "UCS-2"
LIMITS = {GSM7: (160, 153), UCS2: (70, 67)}


@dataclass(frozen=True)
class SmsInfo:
    encoding: str
    segments: int
    units: int  # septets for GSM-7, 16-bit code units for UCS-2
    ucs2_characters: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, str | int]:
        return {"encoding": self.encoding, "segments": self.segments}


def _gsm_width(char: str) -> int:
    return 2 if char in GSM7_EXTENSION else 1


def _ucs2_width(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def non_gsm_characters(text: str) -> tuple[str, ...]:
    """The distinct characters that force UCS-2, in order of first appearance."""
    seen: dict[str, None] = {}
    for char in text:
        if char not in GSM7_BASIC and char not in GSM7_EXTENSION:
            seen.setdefault(char)
    return tuple(seen)


def _pack(widths: list[int], single: int, multi: int) -> int:
    """Parts needed when no character may straddle a part boundary."""
    if sum(widths) <= single:
        return 1
    parts, used = 1, 0
    for width in widths:
        if used + width > multi:
            parts, used = parts + 1, 0
        used += width
    return parts


def sms_info(text: str) -> SmsInfo:
    if not text:
        return SmsInfo(GSM7, 1, 0)  # an empty text still travels as one part
    forcing = non_gsm_characters(text)
    encoding = UCS2 if forcing else GSM7
    width = _ucs2_width if forcing else _gsm_width
    widths = [width(char) for char in text]
    single, multi = LIMITS[encoding]
    return SmsInfo(encoding, _pack(widths, single, multi), sum(widths), forcing)
