"""Messages staff write in the dashboard: Markdown emails and plain texts with placeholders only.

Staff never write HTML or Jinja. An email step is one file, `NN-name.email.md`: a small header
(`subject:` and `preheader:` lines), a blank line, then the body in Markdown. A text step is one
file, `NN-name.sms.plain`: the whole text as it goes out (the editor starts it with the clinic's
name and "Reply STOP to opt out."; the content rules check both are there). The only template
syntax allowed is a placeholder, `{{ first_name }}` or `{{ first_name | default("there") }}`;
anything else in braces (`{% if %}`, attributes, calls, filters) is refused with a plain message.

The loader below turns those files into the Jinja templates the renderer already knows
(`X.subject.txt`, `X.html`, `X.txt`, `X.sms.txt`), so the preview, validation and the send path
render a Markdown step through the very same `TemplateRenderer.render_email`. The HTML body is
Markdown rendered by markdown-it-py with raw HTML off, then cleaned by nh3 (the ammonia
sanitizer) with a strict allow-list (links http(s) only), then placed in the clinic's fixed layout
(`layouts/email.html`, its CAN-SPAM footer). Placeholders travel through Markdown and nh3 as inert
tokens and become Jinja expressions only afterwards, so autoescape applies to every value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import nh3
from jinja2 import BaseLoader, Environment, FileSystemLoader, TemplateNotFound, TemplateSyntaxError
from markdown_it import MarkdownIt

EMAIL_SOURCE = ".email.md"
SMS_SOURCE = ".sms.plain"
#: Tags a Markdown body may produce; everything else is stripped by nh3 (its text kept).
ALLOWED_TAGS = frozenset(
    ("p", "br", "strong", "em", "a", "ul", "ol", "li", "h1", "h2", "h3", "blockquote", "hr")
)
ALLOWED_ATTRIBUTES = {"a": {"href"}}
URL_SCHEMES = frozenset(("http", "https"))
#: Placeholders that are not contact fields: what they print, as the composer's context has it.
CLINIC_PLACEHOLDERS = {
    "clinic_name": ("The clinic's name", "clinic.name"),
    "clinic_phone": ("The clinic's phone number", "clinic.phone"),
    "clinic_website": ("The clinic's website", "clinic.website"),
    "booking_link": ("The booking page link (tracked)", "booking_link()"),
}
LINK_PLACEHOLDER = "booking_link"
_PLACEHOLDER = re.compile(
    r"\{\{\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*"
    r"(?:\|\s*default\(\s*\"(?P<default>[^\"\\{}<>%]*)\"\s*\)\s*)?\}\}"
)
_TOKEN = "https://placeholder.nurture.invalid/"
_TOKEN_FOUND = re.compile(re.escape(_TOKEN) + r"(\d+)")
_BRACE = re.compile(r"[{}]")
_HREF = re.compile(r'href="([^"]*)"')
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


class ContentNotAllowed(TemplateSyntaxError):
    """Something in a staff-written message that is not text, Markdown or a placeholder."""


@dataclass(frozen=True)
class Placeholder:
    name: str
    label: str

    @property
    def example(self) -> str:
        return f"{{{{ {self.name} }}}}"


def allowed_placeholders(
    contact_fields: Iterable[str], custom_fields: Iterable[str] = ()
) -> list[Placeholder]:
    """What the editor's placeholder picker offers: the renderer's allow-listed contact fields,
    the sequence's custom fields, then the clinic's details and the booking link."""
    found = [Placeholder(name, name.replace("_", " ").capitalize()) for name in contact_fields]
    found += [Placeholder(name, f"Custom field: {name}") for name in custom_fields]
    found += [Placeholder(name, label) for name, (label, _) in CLINIC_PLACEHOLDERS.items()]
    return found


def _expression(name: str, default: str | None) -> str:
    """The Jinja for one placeholder. A default replaces an empty value, as staff expect."""
    target = CLINIC_PLACEHOLDERS[name][1] if name in CLINIC_PLACEHOLDERS else f"contact.{name}"
    if default is None:
        return f"{{{{ {target} }}}}"
    return f'{{{{ {target} or "{default}" }}}}'


@dataclass(frozen=True)
class _Tokenised:
    text: str  # placeholders swapped for inert tokens
    expressions: tuple[str, ...]  # token n -> its Jinja expression
    names: tuple[str, ...]  # token n -> the placeholder's name


def _tokenise(text: str, where: str, name: str) -> _Tokenised:
    expressions: list[str] = []
    names: list[str] = []

    def swap(match: re.Match[str]) -> str:
        expressions.append(_expression(match["name"], match["default"]))
        names.append(match["name"])
        return f"{_TOKEN}{len(expressions) - 1}"

    swapped = _PLACEHOLDER.sub(swap, text)
    leftover = re.search(r"\{\{|\{%|\{#|\}\}|%\}|#\}", swapped)
    if leftover:
        line = swapped.count("\n", 0, leftover.start()) + 1
        raise ContentNotAllowed(
            f"{where}: only placeholders like {{{{ first_name }}}} or "
            f'{{{{ first_name | default("there") }}}} can go in braces; '
            f"remove or fix {leftover.group(0)!r} on line {line}",
            line,
            name,
        )
    return _Tokenised(swapped, tuple(expressions), tuple(names))


def _untokenise(text: str, tokens: _Tokenised) -> str:
    return _TOKEN_FOUND.sub(lambda match: tokens.expressions[int(match[1])], text)


def plain_template(text: str, where: str, name: str = "") -> str:
    """Jinja source for text written plainly (a subject, a preheader, a text message). Lone
    braces are refused too, so nothing staff write can ever open a Jinja construct."""
    tokens = _tokenise(text, where, name)
    if "{" in tokens.text or "}" in tokens.text:
        raise ContentNotAllowed(
            f"{where}: curly braces are only for placeholders like {{{{ first_name }}}}", 1, name
        )
    return _untokenise(tokens.text, tokens)


def sanitize_html(html: str) -> str:
    """nh3 with the allow-list: no script, no event handlers, no styles, http(s) links only."""
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        url_relative="deny",
        link_rel="noopener noreferrer",
    )


def body_html(markdown: str, name: str = "") -> str:
    """The body's HTML as Jinja source: Markdown -> HTML -> nh3 -> placeholders. A brace the
    Markdown produced itself (from a `&#123;` entity) is printed by a Jinja string literal:
    an entity would come back as a brace once the stylesheet is inlined, and open Jinja."""
    tokens = _tokenise(markdown, "the email body", name)
    html = sanitize_html(_markdown.render(tokens.text))
    html = _BRACE.sub(lambda brace: f'{{{{ "{brace[0]}" }}}}', html)
    for href in _HREF.findall(html):
        used = _TOKEN_FOUND.findall(href)
        if any(tokens.names[int(n)] != LINK_PLACEHOLDER for n in used) or (
            used and href != f"{_TOKEN}{used[0]}"
        ):
            raise ContentNotAllowed(
                f"the email body: a link's address can be a web address or "
                f"{{{{ {LINK_PLACEHOLDER} }}}}, not another placeholder",
                1,
                name,
            )
    return _untokenise(html, tokens)


_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]*)\)")
_EMPHASIS = re.compile(r"(\*\*|__|\*)(?=\S)(.+?)(?<=\S)\1")
_HEADING = re.compile(r"^#{1,6}\s+", re.M)


def body_text(markdown: str, name: str = "") -> str:
    """The plain-text part: the Markdown as a person reads it (links as "text: address")."""
    tokens = _tokenise(markdown, "the email body", name)
    text = _LINK.sub(lambda m: f"{m[1]}: {m[2]}" if m[1] else m[2], tokens.text)
    text = _HEADING.sub("", _EMPHASIS.sub(r"\2", text))
    if "{" in text or "}" in text:
        raise ContentNotAllowed(
            "the email body: curly braces are only for placeholders like {{ first_name }}",
            1,
            name,
        )
    return _untokenise(text, tokens)


@dataclass(frozen=True)
class EmailSource:
    subject: str
    preheader: str
    body: str

    def dump(self) -> str:
        """The `.email.md` file's text."""
        return (
            f"subject: {self.subject.strip()}\npreheader: {self.preheader.strip()}\n\n{self.body}"
        )


def read_email_source(text: str) -> EmailSource:
    """Header lines (`subject:`, `preheader:`) up to the first blank line, then the body."""
    head, _, body = text.replace("\r\n", "\n").partition("\n\n")
    fields: dict[str, str] = {}
    for line in head.split("\n"):
        key, _, value = line.partition(":")
        fields[key.strip().lower()] = value.strip()
    return EmailSource(fields.get("subject", ""), fields.get("preheader", ""), body.strip())


def _layout(name: str, kind: str, root: Path) -> str:
    """The clinic's fixed layout in the step's language folder (`spasm/es/..` -> layouts/es/)."""
    parts = name.split("/")
    if len(parts) >= 3 and (root / "layouts" / parts[-2] / f"email.{kind}").is_file():
        return f"layouts/{parts[-2]}/email.{kind}"
    return f"layouts/email.{kind}"


def email_part(source: EmailSource, part: str, name: str, root: Path) -> str:
    """Jinja source of one part the renderer reads: `subject.txt`, `html` or `txt`."""
    if part == "subject.txt":
        return plain_template(source.subject, "the subject line", name)
    preheader = plain_template(source.preheader, "the preheader", name)
    if part == "html":
        return (
            f'{{% extends "{_layout(name, "html", root)}" %}}\n'
            f"{{% block preheader %}}{preheader}{{% endblock %}}\n"
            f"{{% block body %}}\n{body_html(source.body, name)}{{% endblock %}}\n"
        )
    return (
        f'{{% extends "{_layout(name, "txt", root)}" %}}\n'
        f"{{% block body %}}\n{body_text(source.body, name)}\n{{% endblock %}}\n"
    )


def staff_source(name: str) -> tuple[str, str] | None:
    """(the staff-written file, the part) that `name` is made from, if it is one of those."""
    if name.endswith(".sms.txt"):
        return name.removesuffix(".sms.txt") + SMS_SOURCE, "sms"
    for part in ("subject.txt", "html", "txt"):
        if name.endswith("." + part):
            return name.removesuffix("." + part) + EMAIL_SOURCE, part
    return None


class StaffWrittenLoader(BaseLoader):
    """The templates folder, where a step written in the editor stands in for the Jinja files
    the renderer asks for. A developer's own file of the same name wins."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = FileSystemLoader(str(root))

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        try:
            return self.files.get_source(environment, template)
        except TemplateNotFound:
            made_from = staff_source(template)
            if made_from is None or not (self.root / made_from[0]).is_file():
                raise
            written, part = made_from
            text, filename, uptodate = self.files.get_source(environment, written)
            if part == "sms":
                return plain_template(text.strip(), "the text", template), filename, uptodate
            source = email_part(read_email_source(text), part, template, self.root)
            return source, filename, uptodate

    def exists(self, name: str) -> bool:
        if (self.root / name).is_file():
            return True
        made_from = staff_source(name)
        return made_from is not None and (self.root / made_from[0]).is_file()

    def list_templates(self) -> list[str]:
        return self.files.list_templates()
