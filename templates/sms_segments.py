"""Exact SMS encoding and segment counting (GSM 03.38 and UCS-2), as carriers bill them.

GSM-7: 160 septets in a single message, 153 per part of a concatenated one (the UDH takes 7);
extension-table characters take two septets (escape + char) and are never split across parts.
UCS-2: 70 units single, 67 per part; a character outside the BMP is a surrogate pair (two units)
and is never split either. One character outside GSM-7 makes the whole message UCS-2.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION

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


_OUTSIDE_GSM7 = re.compile("[^" + re.escape("".join(sorted(GSM7_ALL))) + "]")
_EXTENSION = re.compile("[" + re.escape("".join(sorted(GSM7_EXTENSION))) + "]")


_ASCII_OUTSIDE_GSM7 = re.compile(
    "[" + re.escape("".join(chr(i) for i in range(128) if chr(i) not in GSM7_ALL)) + "]"
)


def non_gsm_characters(text: str) -> tuple[str, ...]:
    """The distinct characters that force UCS-2, in order of first appearance."""
    if text.isascii():  # most texts: a small character class, searched in C
        if not _ASCII_OUTSIDE_GSM7.search(text):
            return ()
        return tuple(dict.fromkeys(_ASCII_OUTSIDE_GSM7.findall(text)))
    return tuple(dict.fromkeys(_OUTSIDE_GSM7.findall(text)))


def _parts(units: int, single: int, multi: int, splits_a_pair: Callable[[int], bool]) -> int:
    """Parts needed when no two-unit character may straddle a boundary: a part that would end
    between the halves of a pair ends one unit early (carriers never split an escape sequence or
    a surrogate pair). Walks part by part, not character by character."""
    if units <= single:
        return 1
    parts, start = 0, 0
    while start < units:
        end = start + multi
        if end < units and splits_a_pair(end):
            end -= 1
        parts, start = parts + 1, end
    return parts


def _gsm7(text: str) -> SmsInfo:
    single, multi = LIMITS[GSM7]
    # An extension character is two septets, an escape then itself: the k-th one, at position
    # p of the text, puts its escape at septet p + k. (Found by the regex engine: texts have
    # few of them, though every tracked link has one, its "~".)
    escapes = {found.start() + k for k, found in enumerate(_EXTENSION.finditer(text))}
    units = len(text) + len(escapes)
    # a part ending at `end` splits a pair when its last septet is an escape
    return SmsInfo(GSM7, _parts(units, single, multi, lambda end: end - 1 in escapes), units)


def _ucs2(text: str, forcing: tuple[str, ...]) -> SmsInfo:
    # surrogatepass: a lone surrogate (possible in JSON input) still counts as one unit
    raw = text.encode("utf-16-le", errors="surrogatepass")
    units = len(raw) // 2
    single, multi = LIMITS[UCS2]

    def splits_a_pair(end: int) -> bool:  # the part's last unit is a high surrogate
        return 0xD8 <= raw[2 * end - 1] <= 0xDB

    return SmsInfo(UCS2, _parts(units, single, multi, splits_a_pair), units, forcing)


def sms_info(text: str, *, smart_encoding: bool = False) -> SmsInfo:
    """Encoding and billed parts of a text, as the carrier counts them; with `smart_encoding`,
    of the text as smart_encode sends it."""
    if smart_encoding:
        text = smart_encode(text)
    if not text:
        return SmsInfo(GSM7, 1, 0)  # an empty text still travels as one part
    forcing = non_gsm_characters(text)
    return _ucs2(text, forcing) if forcing else _gsm7(text)


#: Twilio's Smart Encoding, as its published list has it
#: (https://www.twilio.com/docs/messaging/services/smart-encoding-char-list): typographic quotes,
#: apostrophes, dashes, spaces and the ellipsis become their plain forms; and the accented
#: vowels GSM-7 lacks (it has é, É, à, è, ì, ò, ù, ä, ö, ü, ñ) lose their accent.
SMART_ENCODING = str.maketrans(
    {
        **dict.fromkeys("«»“”ʺˮ‟❝❞〝〞＂„", '"'),  # noqa: RUF001 - these characters are the point
        **dict.fromkeys("‘’ʻˈʼʽʹ‛＇´ˊ`ˋ❛❜′‚", "'"),  # noqa: RUF001
        **dict.fromkeys("‐‑‒–—―−⁃", "-"),  # noqa: RUF001
        **dict.fromkeys(
            "\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
            "\u202f\u205f\u3000",
            " ",
        ),
        **dict.fromkeys("\u200b\u2060\ufeff", ""),
        "…": "...",
        "⁄": "/",  # noqa: RUF001
        "∕": "/",  # noqa: RUF001
        **dict(zip("áíóúÁÍÓÚâêîôûÂÊÎÔÛãõÃÕç", "aiouAIOUaeiouAEIOUaoAOÇ", strict=True)),
    }
)


def smart_encode(text: str) -> str:
    """The text as Twilio's Smart Encoding sends it: transliterated when that leaves only GSM-7
    characters, else unchanged (an emoji or a Vietnamese name keeps the whole text UCS-2, and
    Twilio then sends the original). The one transliteration: the sender's composer and every
    counter (`sms-info`, `campaigns validate`) go through it."""
    if text.isascii() and "`" not in text:  # most texts: the grave accent is ASCII's only
        return text  # character outside GSM-7
    plain = text.translate(SMART_ENCODING)
    return text if non_gsm_characters(plain) else plain
