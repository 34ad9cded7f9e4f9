"""The content rules' findings in words a marketer understands, in one place.

campaigns.validation and campaigns.content_rules word their findings for whoever runs
`nurture campaigns validate` (template paths, Jinja names, CTIA). The dashboard's editor shows
the same findings, reworded here, so a rule is still checked in one place and only its wording
differs. A finding this module does not know keeps its own words (never hidden).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from core.languages import DEFAULT_LANGUAGE

LANGUAGE_WORDS = {"en": "English", "es": "Spanish"}
_WHERE = re.compile(
    r"^(?P<sequence>[a-z0-9-]+) step (?P<number>\d+) \((?P<step>[^,]+), (?P<channel>email|sms)\)"
    r"(?: \[(?P<language>[a-z]{2})\])?: (?P<rest>.*)$",
    re.S,
)
_TEMPLATE_PREFIX = re.compile(r"^\S+\.(?:txt|html|md|plain)(?: line \d+)?: ")


@dataclass(frozen=True)
class PlainFinding:
    """One problem or warning, for one step and language where it has them."""

    message: str
    step: int | None = None  # 1-based, as staff count steps
    language: str | None = None

    def as_dict(self) -> dict[str, str | int | None]:
        return {"message": self.message, "step": self.step, "language": self.language}


def _rules() -> list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]]:
    r = re.compile
    return [
        (
            r(r"the text does not end with opt-out wording"),
            lambda m: (
                "This text has no way to stop: end it with 'Reply STOP to opt out.' "
                "(in Spanish: 'Responda STOP para dejar de recibir mensajes.')"
            ),
        ),
        (
            r(r"the text does not name the sender"),
            lambda m: (
                "This text does not say who it is from: start it with "
                "{{ clinic_name }} (the clinic's name)."
            ),
        ),
        (
            r(r"does not give the clinic's number (\S+)"),
            lambda m: f"The clinic's phone number {m[1]} is missing: add {{{{ clinic_phone }}}}.",
        ),
        (
            r(r"the text has no booking call to action"),
            lambda m: "This text has no booking link: add {{ booking_link }}.",
        ),
        (
            r(r"has no booking call to action"),
            lambda m: "This email has no booking link.",
        ),
        (
            r(
                r"for a contact with (?P<who>.+?) the text is (?P<n>\d+) \S+ segments "
                r".*the limit is (?P<limit>\d+)"
            ),
            lambda m: (
                f"Over {m['limit']} segments: {m['n']} for a contact with {m['who']} "
                "(each segment costs). Shorten the text or raise its segment limit."
            ),
        ),
        (
            r(r"the text is UCS-2 .* because of (.+)$"),
            lambda m: (
                f"These characters make the text cost more (70 characters a segment "
                f"instead of 160): {m[1]}. Replace them with plain ones."
            ),
        ),
        (
            r(r"lacks the postal address"),
            lambda m: (
                "The email is missing the clinic's postal address (the law requires it "
                "in every email): ask a developer to set it in the settings."
            ),
        ),
        (
            r(r"has no unsubscribe link"),
            lambda m: "The email is missing its unsubscribe link.",
        ),
        (
            r(r"reaches contact\.(\w+), which is not an allow-listed field"),
            lambda m: (
                f"The placeholder {{{{ {m[1]} }}}} is not a field messages may use: pick "
                "one from the placeholder list."
            ),
        ),
        (
            r(r"'(.+?)' may read as a promise of a cure"),
            lambda m: f"'{m[1]}' may read as a promise of a cure: say what the care does instead.",
        ),
        (r(r"the subject is empty"), lambda m: "The subject line is empty."),
        (
            r(r"the subject mentions a health detail \((.+?)\)"),
            lambda m: (
                f"The subject line mentions a health detail ({m[1]}): anyone near the screen "
                "can read it. Keep health details in the body."
            ),
        ),
        (
            r(r"the subject is (\d+) characters"),
            lambda m: f"The subject line is {m[1]} characters: phones show about 40 to 60.",
        ),
        (
            r(r"lies outside 08:00-21:00"),
            lambda m: (
                "Texts may only go out between 08:00 and 21:00 in the contact's time "
                "zone: change the step's sending hours."
            ),
        ),
        (
            r(r"does not render for .*has no attribute '(\w+)'"),
            lambda m: (
                f"The placeholder {{{{ {m[1]} }}}} is not a field messages may use: pick "
                "one from the placeholder list."
            ),
        ),
        (
            r(r"does not render for a contact with (?P<who>.+?): (?P<why>.*)$"),
            lambda m: _TEMPLATE_PREFIX.sub("", m["why"]).capitalize(),
        ),
    ]


RULES = _rules()


def where(step: int | None, channel: str | None, language: str | None) -> str:
    if step is None:
        return ""
    kind = "text" if channel == "sms" else "email"
    words = LANGUAGE_WORDS.get(language or DEFAULT_LANGUAGE, language or "")
    return f"Step {step} ({kind}, {words}): "


def reword(line: str) -> PlainFinding:
    """One validation line, for a marketer: where it is, then what to do."""
    found = _WHERE.match(line)
    if found is None:
        return PlainFinding(line[:1].upper() + line[1:])
    number, language = int(found["number"]), found["language"] or DEFAULT_LANGUAGE
    rest = found["rest"]
    for pattern, say in RULES:
        matched = pattern.search(rest)
        if matched:
            message = say(matched)
            break
    else:
        message = _TEMPLATE_PREFIX.sub("", rest)
        message = message[:1].upper() + message[1:]
    return PlainFinding(where(number, found["channel"], language) + message, number, language)
