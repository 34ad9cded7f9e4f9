"""Rules a rendered message must meet before anyone may launch it.

Email (CAN-SPAM, 15 U.S.C. 7704(a)(5)): a valid postal address, a clear way to opt out, and why the
person gets the message. Texts (CTIA Messaging Principles; TCPA): the sender is named and every text
tells how to stop. The clinic's own rules: one clear booking call to action with 888-20-DECOM in
every message, no promise of a cure. Each function returns problems (block a launch) and warnings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from templates.audit import looks_like_health_field
from templates.links import InvalidToken, LinkSigner
from templates.renderer import RenderedEmail, RenderedSms

URL = re.compile(r"https?://[^\s\"'<>()]+")
#: CTIA: a text ends by telling how to stop, in words carriers recognise (STOP is mandatory),
#: in English or in Spanish ("Responda STOP o PARAR para dejar de recibir mensajes.").
OPT_OUT_ENDING = re.compile(
    r"(?:(reply|text|txt|send)\s+\"?stop\"?\s+(to\s+)?(opt[\s-]?out|unsubscribe|stop|end|cancel"
    r"|quit)|(responda|conteste|env[ií]e|escriba|mande)\s+\"?stop\"?(\s*(/|o)\s*\"?parar\"?)?\s+"
    r"para\s+(no\s+recibir\s+m[aá]s|dejar\s+de\s+recibir|darse\s+de\s+baja|cancelar)"
    r"(\s+(m[aá]s\s+)?(mensajes|textos)(\s+de\s+texto)?)?)"
    r"[^\w]*$",
    re.IGNORECASE,
)
CURE_WORDING = re.compile(
    r"\b(cures?|cured|guarantee[sd]?|pain[\s-]free|permanent(ly)?\s+(fix|relief|cure)|"
    r"miracle|100\s?%|never\s+hurt\s+again|"
    r"cura[rs]?|curamos|curaci[oó]n|garantiza\w*|garant[ií]a|sin\s+dolor|milagro\w*|"
    r"(alivio|soluci[oó]n)\s+(permanente|definitiv[oa])|nunca\s+m[aá]s\s+(dolor|le\s+duel\w+))\b",
    re.IGNORECASE,
)
HEADER_REACH = 300  # visible characters (a hidden preheader comes first) where the header sits
_SUBJECT_WORD = re.compile(r"[^\W\d_]+")
#: Words that make what follows the reader's own: English and Spanish (usted and tú forms).
_READER = frozenset({"your", "yours", "su", "sus", "tu", "tus"})
_READER_REACH = 3  # "your lower back pain": the health word within three words of "your"
SUBJECT_WARN_LENGTH = 78  # RFC 5322 suggests lines within 78; phones show ~40-60 characters


@dataclass(frozen=True)
class ClinicAsShown:
    """The clinic details exactly as templates receive them (Composer.context's `clinic`)."""

    name: str
    phone: str
    postal_address: str
    website: str


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class _HtmlReader(HTMLParser):
    """Visible text and link targets of an email's HTML (entities decoded by HTMLParser)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.chunks: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script", "title", "head"):
            self._hidden += 1
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "title", "head") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.chunks.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.chunks).split())


def _squash(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class LinkKinds:
    destinations: frozenset[str]
    unsubscribe_channels: frozenset[str]
    preferences: bool


def classify_links(urls: list[str], signer: LinkSigner) -> LinkKinds:
    """Read back every engine link in a message with the signer that made it."""
    base = signer.base
    destinations, channels, preferences = set(), set(), False
    for url in urls:
        if not url.startswith(base + "/"):
            continue
        kind, _, token = url[len(base) + 1 :].partition("/")
        try:
            if kind == "l":
                destinations.add(signer.read_click(token).destination)
            elif kind == "u":
                channels.add(str(signer.read_unsubscribe(token).channel))
            elif kind == "p":
                signer.read_preferences(token)
                preferences = True
        except InvalidToken:
            continue
    return LinkKinds(frozenset(destinations), frozenset(channels), preferences)


def _cta(kinds: LinkKinds, where: str, out: Findings) -> None:
    if "booking" not in kinds.destinations:
        out.problems.append(f"{where} has no booking call to action ({{{{ booking_link() }}}})")
    if len(kinds.destinations) > 1:
        listed = ", ".join(sorted(kinds.destinations))
        out.warnings.append(
            f"{where} links to several destinations ({listed}); one clear call to action reads best"
        )


def _wording(text: str, where: str, out: Findings) -> None:
    for match in sorted({m.group(0).lower() for m in CURE_WORDING.finditer(text)}):
        out.warnings.append(f"{where}: {match!r} may read as a promise of a cure")


def _subject_health(subject: str, clinic: ClinicAsShown, out: Findings) -> None:
    """A subject line is read on a lock screen and in a shared inbox: it must not say what ails
    the reader. So a health word (templates.audit's, as for custom fields) is reported where the
    subject ties it to the reader ("your sciatica", "su dolor lumbar"), within `_READER_REACH`
    words of a "your"; a subject naming the topic the person asked about ("what back spasms
    may be telling you") or the clinic's care ("how spinal decompression works") is not a
    detail about them. A warning, not a problem: wording is the reviewer's call, where a
    placeholder carrying a health field is refused outright (campaigns.validation)."""
    words = [word.lower() for word in _SUBJECT_WORD.findall(subject.replace(clinic.name, " "))]
    health = [
        word
        for at, word in enumerate(words)
        if looks_like_health_field(word)
        and any(near in _READER for near in words[max(0, at - _READER_REACH) : at])
    ]
    if health:
        out.warnings.append(
            f"the subject mentions a health detail ({', '.join(dict.fromkeys(health))}); "
            "anyone near the screen can read it"
        )


def check_email(
    rendered: RenderedEmail, clinic: ClinicAsShown, reason: str, signer: LinkSigner
) -> Findings:
    out = Findings()
    reader = _HtmlReader()
    reader.feed(rendered.html)
    html_text, text = reader.text, _squash(rendered.text)
    if not rendered.subject.strip():
        out.problems.append("the subject is empty")
    elif len(rendered.subject) > SUBJECT_WARN_LENGTH:
        out.warnings.append(
            f"the subject is {len(rendered.subject)} characters; phones cut it near 40-60"
        )
    _subject_health(rendered.subject, clinic, out)
    if not text:
        out.problems.append("the plain-text part is empty")
    for part, visible, urls in (
        ("HTML part", html_text, reader.hrefs),
        ("text part", text, URL.findall(rendered.text)),
    ):
        kinds = classify_links(urls, signer)
        if _squash(clinic.postal_address) not in visible:
            out.problems.append(f"the {part} footer lacks the postal address (CAN-SPAM)")
        if _squash(reason) not in visible:
            out.problems.append(f"the {part} footer does not say why the person gets this email")
        if "email" not in kinds.unsubscribe_channels:
            out.problems.append(f"the {part} has no unsubscribe link ({{{{ unsubscribe_url }}}})")
        if not kinds.preferences:
            out.warnings.append(f"the {part} has no preferences link ({{{{ preferences_url }}}})")
        if clinic.phone not in visible:
            out.problems.append(f"the {part} does not give the clinic's number {clinic.phone}")
        _cta(kinds, f"the {part}", out)
    if clinic.name not in html_text[:HEADER_REACH]:
        out.problems.append("the HTML part has no clinic header (the clinic's name at the top)")
    _wording(f"{rendered.subject}\n{html_text}\n{text}", "the email", out)
    return out


def check_sms(rendered: RenderedSms, clinic: ClinicAsShown, signer: LinkSigner) -> Findings:
    out = Findings()
    body = rendered.body
    if clinic.name.lower() not in body.lower():
        out.problems.append(f"the text does not name the sender ({clinic.name}; CTIA)")
    if not OPT_OUT_ENDING.search(body):
        out.problems.append(
            'the text does not end with opt-out wording, e.g. "Reply STOP to opt out." or '
            '"Responda STOP o PARAR para dejar de recibir mensajes."'
        )
    if clinic.phone not in body:
        out.problems.append(f"the text does not give the clinic's number {clinic.phone}")
    kinds = classify_links(URL.findall(body), signer)
    if kinds.unsubscribe_channels and "sms" not in kinds.unsubscribe_channels:
        out.problems.append("the text links to an email unsubscribe page; texts stop with STOP")
    _cta(kinds, "the text", out)
    _wording(body, "the text", out)
    return out


def describe_ucs2(characters: tuple[str, ...]) -> str:
    """E.g. `'’' (U+2019)`: the characters that forced UCS-2, for a person to replace."""  # noqa: RUF002
    return ", ".join(f"{char!r} (U+{ord(char):04X})" for char in characters)
