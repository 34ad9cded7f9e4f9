"""Exact SMS encoding and segment counting: the hard cases carriers bill differently from a naive
length / 153, and properties that hold for any text."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from templates.sms_segments import GSM7, GSM7_BASIC, GSM7_EXTENSION, UCS2, sms_info

BASIC = sorted(GSM7_BASIC)
EXTENSION = sorted(GSM7_EXTENSION)


@pytest.mark.parametrize(
    ("text", "encoding", "segments", "units"),
    [
        ("", GSM7, 1, 0),
        ("Hello", GSM7, 1, 5),
        ("a" * 160, GSM7, 1, 160),
        ("a" * 161, GSM7, 2, 161),
        ("a" * 306, GSM7, 2, 306),
        ("a" * 307, GSM7, 3, 307),
        ("€" * 80, GSM7, 1, 160),  # extension characters count two septets
        ("€" * 81, GSM7, 2, 162),
        ("[" * 76 + "]" * 76, GSM7, 2, 304),
        ("a" * 159 + "^", GSM7, 2, 161),  # the escape pushes it past one message
        ("Café déjà vu, Ñoño über Åse", GSM7, 1, 27),  # accents in the GSM basic table
        ("Ñandú", UCS2, 1, 5),  # ú is not in it
        ("á" * 70, UCS2, 1, 70),
        ("á" * 71, UCS2, 2, 71),
        ("á" * 134, UCS2, 2, 134),
        ("á" * 135, UCS2, 3, 135),
        ("😀" * 35, UCS2, 1, 70),  # outside the BMP: a surrogate pair, two units
        ("😀" * 36, UCS2, 2, 72),
        ("Hi 😀", UCS2, 1, 5),
    ],
)
def test_known_counts(text: str, encoding: str, segments: int, units: int) -> None:
    info = sms_info(text)
    assert (info.encoding, info.segments, info.units) == (encoding, segments, units)


def test_an_escape_pair_is_never_split_across_parts() -> None:
    # 306 septets fit two parts by arithmetic, but "[" would straddle the 153 boundary.
    text = "a" * 152 + "[" + "a" * 152
    assert sms_info(text).units == 306
    assert sms_info(text).segments == 3
    assert sms_info("a" * 151 + "[" + "a" * 153).segments == 2  # the pair ends part one exactly


def test_a_surrogate_pair_is_never_split_across_parts() -> None:
    text = "á" * 66 + "😀" + "á" * 66  # 134 units: two parts by arithmetic, three in fact
    assert sms_info(text).units == 134
    assert sms_info(text).segments == 3
    assert sms_info("á" * 65 + "😀" + "á" * 67).segments == 2


def test_texts_at_the_153_and_67_boundaries() -> None:
    assert sms_info("a" * 153 * 2).segments == 2
    assert sms_info("a" * (153 * 2 + 1)).segments == 3
    assert sms_info("€" * 76 + "a" * 153).segments == 2  # 152 + 153
    assert sms_info("€" * 77 + "a" * 152).segments == 3  # the 77th € starts part two
    assert sms_info("á" * 67 * 3).segments == 3
    assert sms_info("á" * (67 * 3 + 1)).segments == 4


def test_the_characters_that_forced_ucs2_are_named_once_in_order() -> None:
    info = sms_info("It\u2019s \u201cfine\u201d \u2014 isn\u2019t it?")  # curly quotes, em dash
    assert info.encoding == UCS2
    assert info.ucs2_characters == ("\u2019", "\u201c", "\u201d", "\u2014")
    assert sms_info("Plain [GSM] text €5").ucs2_characters == ()


def test_as_dict_is_the_cli_shape() -> None:
    assert sms_info("€").as_dict() == {"encoding": "GSM-7", "segments": 1}


@given(st.text(alphabet=st.sampled_from(BASIC), max_size=700))
def test_basic_gsm_text_follows_160_153(text: str) -> None:
    info = sms_info(text)
    expected = 1 if len(text) <= 160 else math.ceil(len(text) / 153)
    assert (info.encoding, info.segments, info.units) == (GSM7, expected, len(text))


@given(st.text(alphabet=st.sampled_from(BASIC + EXTENSION), max_size=700))
def test_gsm_text_with_escapes_is_bounded_by_the_arithmetic(text: str) -> None:
    info = sms_info(text)
    septets = sum(2 if char in GSM7_EXTENSION else 1 for char in text)
    assert info.encoding == GSM7 and info.units == septets
    if septets <= 160:
        assert info.segments == 1
    else:  # a part loses at most one septet to an escape pair that may not straddle
        assert math.ceil(septets / 153) <= info.segments <= math.ceil(septets / 152)


@given(st.text(min_size=1, max_size=300))
def test_any_text(text: str) -> None:
    info = sms_info(text)
    outside = any(c not in GSM7_BASIC and c not in GSM7_EXTENSION for c in text)
    assert info.encoding == (UCS2 if outside else GSM7)
    if outside:
        assert info.units == len(text.encode("utf-16-le")) // 2
    single, multi = (70, 67) if outside else (160, 153)
    if info.units <= single:
        assert info.segments == 1
    else:
        assert math.ceil(info.units / multi) <= info.segments <= math.ceil(info.units / (multi - 1))


@given(st.text(max_size=200), st.text(min_size=1, max_size=5))
def test_appending_never_needs_fewer_parts_in_the_same_encoding(text: str, more: str) -> None:
    before, after = sms_info(text), sms_info(text + more)
    if before.encoding == after.encoding:
        assert after.segments >= before.segments


def _reference(text: str) -> int:
    """Plain greedy packing over every character: the definition the fast paths must match."""
    ucs2 = any(c not in GSM7_BASIC and c not in GSM7_EXTENSION for c in text)
    widths = [
        (2 if ord(c) > 0xFFFF else 1) if ucs2 else (2 if c in GSM7_EXTENSION else 1) for c in text
    ]
    single, multi = (70, 67) if ucs2 else (160, 153)
    if sum(widths) <= single:
        return 1
    parts, used = 1, 0
    for width in widths:
        if used + width > multi:
            parts, used = parts + 1, 0
        used += width
    return parts


@given(
    st.lists(
        st.sampled_from(["a", "€", "[", "é", "á", "😀", "你", " ", "\n", "\u2019"]),
        max_size=450,
    ).map("".join)
)
def test_fast_paths_agree_with_plain_greedy_packing(text: str) -> None:
    assert sms_info(text).segments == _reference(text)
