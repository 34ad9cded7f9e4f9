"""The languages a contact may read us in: codes, their names, and the words staff write for them.

English is the program's first language and every message's fallback. A language is added by
adding its folders of templates (templates/<sequence>/<code>/, web/pages/<code>/) and one entry
here, so the import accepts it and the pages can offer it.
"""

from __future__ import annotations

from typing import Final

ENGLISH: Final = "en"
SPANISH: Final = "es"
DEFAULT_LANGUAGE: Final = ENGLISH

#: Each language's own name for itself: what a recipient looks for on a page's switch.
LANGUAGE_NAMES: Final[dict[str, str]] = {ENGLISH: "English", SPANISH: "Español"}
LANGUAGES: Final = tuple(LANGUAGE_NAMES)

#: What a spreadsheet may say for each language, lower case (a CSV import looks each value up in
#: this dict once per row, after lower-casing it: no regex on the import's hot path).
_WORDS: Final[dict[str, tuple[str, ...]]] = {
    ENGLISH: ("en", "eng", "english", "inglés", "ingles", "en-us", "en_us"),
    SPANISH: (
        "es", "spa", "spanish", "español", "espanol", "castellano", "es-us", "es_us",
        "es-mx", "es_mx",
    ),
}  # fmt: skip
LANGUAGE_WORDS: Final[dict[str, str]] = {
    word: code for code, words in _WORDS.items() for word in words
}


def language_of(value: object) -> str:
    """A stored language as we use it: a known code, else English (the fallback everywhere)."""
    return value if isinstance(value, str) and value in LANGUAGE_NAMES else DEFAULT_LANGUAGE
