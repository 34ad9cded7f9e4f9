"""CSS inlined into each HTML template's source once, when the template is loaded.

Many email clients drop `<style>`, so every element must carry its styles in a `style`
attribute. Inlining the rendered page cost about as much as rendering it, once per message; yet
the styles depend only on the template's markup, never on a message's values. So the loader
hands Jinja the template's source with the styles already inlined, and Jinja compiles and caches
that: a message is rendered once, by `Template.render`, and never parsed as HTML again.

How: every Jinja construct (`{{ … }}`, `{% … %}`, `{# … #}`) in the source is swapped for an
inert token, css-inline inlines the email stylesheet (`layouts/email.css`, plus a document's own
`<style>`) into that markup, and the constructs are put back where their tokens came out.
Autoescaping is untouched: it is decided by the template's name and applied by Jinja when a
message renders, after all this.

That is the page per-message inlining would give only if the styles cannot depend on what a
construct prints, and the HTML parser keeps the markup's shape. So a template is refused at load
(a TemplateSyntaxError naming it, which validation reports) when:
- a construct sits anywhere but in text or in a quoted attribute value, or sits in a `class`,
  `id` or `style` attribute, or in a `<style>` element (the value would decide the styles);
- a stylesheet has a selector other than element names, classes, ids and descendant or child
  combinators (an attribute selector could read a printed URL; `:nth-child` or `+` the number of
  items a loop prints);
- the inliner does not give back every token exactly once, in order, each after the same tag
  (the parser moves text out of a `<table>` or a `<head>`).

Two rules a template author keeps in mind: a selector matches within one template file, so the
stylesheet styles a step's own elements by their names or classes (`h2`), not by the layout's
element around its block (`.body h2`); and each branch of an `{% if %}` should hold whole
elements, as HTML anywhere should.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from pathlib import Path

import css_inline
from jinja2 import BaseLoader, Environment, FileSystemLoader, TemplateSyntaxError

#: The stylesheet every HTML template is inlined with, under the templates' root.
STYLESHEET = "layouts/email.css"

_OPENERS = re.compile(r"\{[{%#]")
_CLOSERS = {"{{": "}}", "{%": "%}", "{#": "#}"}
_DOCUMENT = re.compile(r"(?:\s|<!--.*?-->)*<(?:!doctype|html)\b", re.I | re.S)
_STYLE_ELEMENT = re.compile(r"<style\b[^>]*>(.*?)</style", re.I | re.S)
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)
#: Selectors whose match cannot depend on a printed value or on how many items a loop prints.
_PLAIN_SELECTOR = re.compile(r"[\w\s.#>,*-]+")
_NAME = r"[^\s/>\"'=<]+"
_ATTRIBUTE = rf"""\s+{_NAME}(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?"""
_TAG = rf"[A-Za-z][^\s/>\"'=<]*(?:{_ATTRIBUTE})*"
#: A whole tag or comment, from its `<` to its `>`.
_MARKUP = re.compile(rf"<(?:!--.*?--|!doctype[^>]*|/?{_TAG}\s*/?)>", re.S | re.I)
#: A start tag up to the inside of a quoted attribute value.
_VALUE_START = re.compile(rf"""<{_TAG}\s+({_NAME})\s*=\s*(?:"[^"<]*|'[^'<]*)""")
_UNFINISHED_REFERENCE = re.compile(r"&#?[A-Za-z0-9]*")
#: Attributes whose value decides which rules apply, or holds the inlined styles.
_STYLED_ATTRIBUTES = frozenset(("class", "id", "style"))


class InliningLoader(BaseLoader):
    """Templates from a folder; `.html` ones with the stylesheet inlined (see the module)."""

    def __init__(self, root: Path, files: BaseLoader | None = None) -> None:
        #: where sources come from: the folder, or a loader over it (templates.markdown_body)
        self.files = files or FileSystemLoader(str(root))
        sheet = root / STYLESHEET
        self.css = sheet.read_text(encoding="utf-8") if sheet.is_file() else ""

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        source, filename, uptodate = self.files.get_source(environment, template)
        if template.endswith(".html"):
            source = inline_template(source, self.css, template)
        return source, filename, uptodate

    def list_templates(self) -> list[str]:
        return self.files.list_templates()


def inline_template(source: str, css: str, name: str) -> str:
    """`source` with `css` (and, for a whole document, its own `<style>`) inlined into its
    markup, its Jinja constructs as they were. Raises TemplateSyntaxError (see the module)."""
    nonce = _nonce(source)
    markup, constructs, starts = _masked(source, nonce, name)
    tokens = [f"{nonce}{index}x" for index in range(len(constructs))]
    for sheet in (css, *_STYLE_ELEMENT.findall(markup)):
        _check_stylesheet(sheet, nonce, name)
    at = 0
    for token, start in zip(tokens, starts, strict=True):
        at = markup.index(token, at)
        if not _placed_safely(markup, at):
            raise TemplateSyntaxError(
                "a {{ }} or {% %} inside a tag must be the quoted value of an attribute other "
                "than class, id or style, so that the styles inlined at load hold for every "
                "message",
                source.count("\n", 0, start) + 1,
                name,
            )
        at += len(token)
    inliner = css_inline.CSSInliner(
        keep_style_tags=False, load_remote_stylesheets=False, extra_css=css or None
    )
    try:
        if _DOCUMENT.match(markup):
            inlined = inliner.inline(markup)
        else:
            inlined = inliner.inline_fragment(markup, "")
    except css_inline.InlineError as exc:
        raise TemplateSyntaxError(f"CSS cannot be inlined: {exc}", 1, name) from None
    pieces = re.split(rf"({nonce}\d+x)", inlined)
    if pieces[1::2] != tokens or _tags_before(inlined, nonce) != _tags_before(markup, nonce):
        raise TemplateSyntaxError(
            "the HTML parser moved or dropped a {{ }} or {% %}: keep them in text or in quoted "
            "attribute values, and each {% if %} branch whole elements",
            1,
            name,
        )
    pieces[1::2] = constructs
    return "".join(pieces)


def _nonce(source: str) -> str:
    """Letters and digits the parser and the inliner pass through, found nowhere in `source`."""
    while True:
        nonce = "jinja" + secrets.token_hex(8) + "n"
        if nonce not in source:
            return nonce


def _masked(source: str, nonce: str, name: str) -> tuple[str, list[str], list[int]]:
    """`source` with each Jinja construct replaced by a token; the constructs in order, and
    where each starts in `source`."""
    out: list[str] = []
    constructs: list[str] = []
    starts: list[int] = []
    at = 0
    while (opened := _OPENERS.search(source, at)) is not None:
        end = _construct_end(source, opened.start(), _CLOSERS[opened.group()])
        if end < 0:
            line = source.count("\n", 0, opened.start()) + 1
            raise TemplateSyntaxError(f"unclosed {opened.group()}", line, name)
        out += (source[at : opened.start()], f"{nonce}{len(constructs)}x")
        constructs.append(source[opened.start() : end])
        starts.append(opened.start())
        at = end
    out.append(source[at:])
    return "".join(out), constructs, starts


def _construct_end(source: str, start: int, closer: str) -> int:
    """Where the construct opened at `start` ends, past its closer; quoted strings skipped (a
    string may hold `}}`). -1 if it never closes."""
    at, quote = start + 2, ""
    while at < len(source):
        char = source[at]
        if quote:
            if char == "\\":
                at += 1
            elif char == quote:
                quote = ""
        elif closer != "#}" and char in "'\"":
            quote = char
        elif source.startswith(closer, at):
            return at + 2
        at += 1
    return -1


def _check_stylesheet(css: str, nonce: str, name: str) -> None:
    if nonce in css:
        raise TemplateSyntaxError("a <style> element holds a {{ }} or {% %}", 1, name)
    for selectors in re.findall(r"([^{}]*)\{[^{}]*\}", _CSS_COMMENT.sub("", css)):
        if not _PLAIN_SELECTOR.fullmatch(selectors):
            raise TemplateSyntaxError(
                f"the email stylesheet's selector {selectors.strip()!r} is not only element "
                "names, classes, ids and descendant or child combinators",
                1,
                name,
            )


def _tags_before(markup: str, nonce: str) -> list[str]:
    """For each token, the tag just before it: the parser moved none (out of a table, out of
    `<head>`) if these are the same before and after (it adds implied tags before tags only)."""
    tags, last = [], ""
    for found in re.finditer(rf"<(/?[A-Za-z][^\s/>]*)|{nonce}\d+x", markup):
        if found[1] is None:
            tags.append(last)
        else:
            last = found[1].lower()
    return tags


def _placed_safely(markup: str, at: int) -> bool:
    """The token at `at` is in text (after a whole tag or comment) or in a quoted attribute
    value other than class, id or style, and does not extend an `&name` reference; or it is in
    a comment."""
    comment = markup.rfind("<!--", 0, at)
    if comment >= 0 and markup.find("-->", comment, at) < 0:
        return True
    ampersand = markup.rfind("&", 0, at)
    if ampersand >= 0 and _UNFINISHED_REFERENCE.fullmatch(markup, ampersand, at):
        return False
    opened, closed = markup.rfind("<", 0, at), markup.rfind(">", 0, at)
    if opened < 0:
        return True
    if closed > opened:
        return _MARKUP.fullmatch(markup, opened, closed + 1) is not None
    value = _VALUE_START.fullmatch(markup, opened, at)
    return value is not None and value[1].lower() not in _STYLED_ATTRIBUTES
