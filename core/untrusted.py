"""Reading numbers a sender controls (webhook headers and fields, query strings) without a crash.

`str.isdigit()` is true for superscripts and other scripts' digits: `"1\\xb9".isdigit()` is True
but `int("1\\xb9")` raises, and `int("\\u0663")` quietly reads an Arabic-Indic 3. A check-then-int
on a header therefore answered 500 with a traceback. Providers send ASCII digits only, so anything
else is simply not a number here, and the caller answers 4xx or ignores the field (OWASP input
validation: allow-list what is expected, reject the rest).
"""

from __future__ import annotations


def whole_number(text: str | bytes | None, *, max_digits: int) -> int | None:
    """The value of 1 to `max_digits` ASCII digits 0-9 (nothing else, no sign, no spaces);
    None for anything else. The bound keeps int() far from its 4,300-digit limit and callers'
    values inside a database integer."""
    if not text or len(text) > max_digits or not text.isascii() or not text.isdigit():
        return None
    return int(text)
