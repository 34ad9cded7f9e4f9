"""CSS inlined once per page skeleton; each message's URLs are then dropped into the result.

css-inline was ~40% of an email's render time, yet the emails of a step differ only by their
signed URLs and the contact's fields. So the renderer renders the HTML part with each URL
replaced by a token (a random per-process nonce and a slot number: digits only), and that
tokenized page, the skeleton, is the same for every message of a step with the same contact
fields. The cache maps a skeleton to its inlined form, so css-inline runs once per distinct
skeleton; a message then only swaps its own escape(url) in for each token.

Why this is byte for byte the page the plain path (render with the URLs, then inline) sends:
- Jinja: the renderer tokenizes only templates that print URLs as whole autoescaped values
  (templates/bare_urls.py), so the rendered skeleton with escape(url) in place of each token is
  the plain render.
- css-inline parses the page (html5ever) and serializes it again. For a URL of RFC 3986
  characters other than `'` (`URL_CHARS`; the signer's URLs always are), printed in text or in a
  quoted attribute value, the parser reads escape(url) back as url and the serializer writes it
  as escape(url) again: `&` is `&amp;` both ways, and the characters Jinja and the serializer
  escape differently (`'`, `"`, `<`, `>`, no-break space, CR) are not allowed. A token and a URL
  are both non-blank, neither can open or close markup (a URL's `&` is a whole `&amp;`), so the
  parse trees have the same shape. The rest is checked once per skeleton, when it is first
  inlined: each token sits in text or in the quoted value of an attribute CSS selectors only
  read through `[...]` (href, src, ...), not right after an unfinished `&name` or `<`
  (`_placed_safely`); no `<style>` holds a token or an attribute selector, the only ways the
  inlined styles could depend on the value (`_plain_stylesheets`); and the inliner kept every
  token, in order.
- Any other value, or a skeleton that fails a check, takes the plain path (a refused skeleton
  is remembered as such). Last guard: the nonce must not appear in the page sent.

A contact's fields are in the skeleton as rendered, so they need no such argument; the nonce
is secret to the process (no token leaves it), so a name cannot pose as a token.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from markupsafe import escape

from templates.bare_urls import URL_MAKERS, URL_VALUES

#: RFC 3986 characters except `'` (which Jinja writes `&#39;` and the serializer leaves as is).
URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&()*+,;=%]+")
MAX_PAGES = 256
MAX_CHARS = 4_000_000  # ~10 kB per skeleton and its inlined page: a few MB at most
MAX_SLOTS = 1000  # three digits

#: Attributes a token may be in: the selector engine never reads their values without `[...]`.
URL_ATTRIBUTES = frozenset(("href", "src", "action", "formaction", "cite", "title", "alt"))
_NAME = r"[^\s/>\"'=<]+"
_ATTR = rf"""\s+{_NAME}(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?"""
_TAG = rf"[A-Za-z][^\s/>\"'=<]*(?:{_ATTR})*"
#: A whole tag or comment, from its `<` to its `>`.
_MARKUP = re.compile(rf"<(?:!--.*?--|/?{_TAG}\s*/?)>", re.S)
#: A start tag up to the inside of a quoted attribute value.
_VALUE_START = re.compile(rf"""<{_TAG}\s+({_NAME})\s*=\s*(?:"[^"<]*|'[^'<]*)""")
_UNFINISHED_REFERENCE = re.compile(r"&#?[A-Za-z0-9]*")

_MISSING = object()
Parts = tuple[str, ...]  # literal text and tokens, alternating: text, token, text, ..., text
#: Where a URL came from: (name,) for a value, (name, args, kwargs) for a call of a maker.
Origin = tuple[Any, ...]


class Slots:
    """One message's tokens: one per distinct URL, so `link()` and `booking_link()` share one.

    Each URL asked for is noted with where it came from (`origins`), so that a memoized render
    (templates/memo.py) can ask for the same URLs of another message in the same order."""

    __slots__ = ("_escaped", "_nonce", "_raw", "_tokens", "origins", "usable")

    def __init__(self, nonce: str) -> None:
        self._nonce = nonce
        self._tokens: dict[str, str] = {}
        self._escaped: dict[str, str] = {}
        self._raw: dict[str, str] = {}
        self.origins: list[tuple[Origin, str]] = []
        self.usable = True  # False once a value could not be tokenized: take the plain path

    def tokenize(
        self, variables: Mapping[str, Any], values: Iterable[str] = URL_VALUES
    ) -> dict[str, Any]:
        """The message's variables with tokens for its URLs (of its URL `values`, those the
        template reads): the skeleton's context."""
        tokenized = dict(variables)
        for key in values:
            if key in tokenized:
                tokenized[key] = self.token(tokenized[key], (key,))
        for key in URL_MAKERS:
            if callable(tokenized.get(key)):
                tokenized[key] = self.tokenizing(tokenized[key], key)
        return tokenized

    def token(self, value: Any, origin: Origin) -> Any:
        token = self._tokens.get(value) if type(value) is str else None
        if token is None:
            if not self._tokenizable(value):
                self.usable = False
                return value
            token = f"{self._nonce}{len(self._tokens):03d}"
            self._tokens[value] = token
            self._raw[token] = value
        self.origins.append((origin, token))
        return token

    def tokenizing(self, maker: Callable[..., Any], key: str) -> Callable[..., Any]:
        """`maker` (e.g. link) returning a token for the URL it returns, errors and all."""

        def call(*args: Any, **kwargs: Any) -> Any:
            return self.token(maker(*args, **kwargs), (key, args, tuple(kwargs.items())))

        return call

    def replay(self, origins: Iterable[tuple[Origin, str]], variables: Mapping[str, Any]) -> bool:
        """This message's URLs for the origins another message's render noted: True when each
        gets the token it got there (else, or if one cannot be made, render in full)."""
        tokens = self._tokens
        try:
            for origin, expected in origins:
                if len(origin) == 1:
                    value = variables[origin[0]]
                elif origin[2]:
                    value = variables[origin[0]](*origin[1], **dict(origin[2]))
                else:
                    value = variables[origin[0]](*origin[1])
                token = tokens.get(value) if type(value) is str else None
                if token is None:
                    if not self._tokenizable(value):
                        return False
                    token = tokens[value] = f"{self._nonce}{len(tokens):03d}"
                    self._raw[token] = value
                if token != expected:
                    return False
        except Exception:  # e.g. an unknown destination: the full render reports it
            return False
        return True

    def escaped(self, token: str) -> str | None:
        """The URL for `token` as the page prints it (escaped once, when first asked for)."""
        value = self._escaped.get(token)
        if value is None and token in self._raw:
            value = self._escaped[token] = str(escape(self._raw[token]))
        return value

    def fill(self, parts: Sequence[str]) -> str | None:
        """Text and tokens, alternating, with this message's URLs as they are (a text part is
        not escaped); None if a token is not one of this message's."""
        filled = list(parts)
        for index in range(1, len(filled), 2):
            value = self._raw.get(filled[index])
            if value is None:
                return None
            filled[index] = value
        text = "".join(filled)
        return None if self._nonce in text else text

    def _tokenizable(self, value: Any) -> bool:
        return (
            type(value) is str
            and len(self._tokens) < MAX_SLOTS
            and URL_CHARS.fullmatch(value) is not None
            and self._nonce not in value
        )


class Skeletons:
    """A bounded LRU of skeleton → inlined parts, or None for a skeleton the checks refused."""

    def __init__(
        self,
        inline: Callable[[str], str],
        max_pages: int = MAX_PAGES,
        max_chars: int = MAX_CHARS,
    ) -> None:
        # The first digit appears nowhere else in the nonce, so no suffix of one token and
        # prefix of the next can read as a nonce: tokens side by side split unambiguously.
        self.nonce = "9" + "".join(secrets.choice("012345678") for _ in range(14))
        self._inline = inline
        self.max_pages, self.max_chars = max_pages, max_chars
        self._pages: OrderedDict[str, Parts | None] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()  # the web app renders previews from several threads

    def slots(self) -> Slots:
        return Slots(self.nonce)

    def __len__(self) -> int:
        return len(self._pages)

    @property
    def chars(self) -> int:
        """Characters held: skeletons and inlined pages (the bound is on these)."""
        return self._chars

    def page(self, skeleton: str, slots: Slots) -> str | None:
        """The inlined page with this message's URLs, or None: take the plain path."""
        if not slots.usable:
            return None
        with self._lock:
            parts = self._pages.get(skeleton, _MISSING)
            if parts is not _MISSING:
                self._pages.move_to_end(skeleton)
        if parts is _MISSING:
            parts = self._inlined_parts(skeleton)
            self._remember(skeleton, parts)
        if parts is None:
            return None
        filled = list(parts)
        for index in range(1, len(filled), 2):
            value = slots.escaped(filled[index])
            if value is None:
                return None
            filled[index] = value
        html = "".join(filled)
        return None if self.nonce in html else html

    def _inlined_parts(self, skeleton: str) -> Parts | None:
        """Checked once per skeleton: see the module docstring."""
        before = self.split(skeleton)
        if before is None or not _plain_stylesheets(skeleton, self.nonce):
            return None
        at = 0
        for index in range(1, len(before), 2):
            at += len(before[index - 1])
            if not _placed_safely(skeleton, at):
                return None
            at += len(before[index])
        try:
            inlined = self._inline(skeleton)
        except Exception:  # the plain path raises the inliner's error with the real page
            return None
        after = self.split(inlined)
        if after is None or after[1::2] != before[1::2]:
            return None  # the inliner dropped, repeated or moved a token
        return after

    def split(self, page: str) -> Parts | None:
        """Text and tokens, alternating; None if a piece of the nonce is not a whole token."""
        pieces = page.split(self.nonce)
        parts = [pieces[0]]
        for piece in pieces[1:]:
            slot = piece[:3]
            if not (len(slot) == 3 and slot.isascii() and slot.isdigit()):
                return None
            parts += (self.nonce + slot, piece[3:])
        return tuple(parts)

    def _remember(self, skeleton: str, parts: Parts | None) -> None:
        size = len(skeleton) + sum(map(len, parts or ()))
        if size > self.max_chars:
            return
        with self._lock:
            if skeleton in self._pages:
                return
            self._pages[skeleton] = parts
            self._chars += size
            while len(self._pages) > self.max_pages or self._chars > self.max_chars:
                old, old_parts = self._pages.popitem(last=False)
                self._chars -= len(old) + sum(map(len, old_parts or ()))


def _plain_stylesheets(page: str, nonce: str) -> bool:
    """No `<style>` element has an attribute selector or a token: nothing in the CSS can tell a
    token from a URL. (Lower-cased to find the tags; `[` and digits are unchanged by that.)"""
    lowered = page.lower()
    start = lowered.find("<style")
    while start >= 0:
        end = lowered.find("</style", start)
        css = lowered[start:] if end < 0 else lowered[start:end]
        if "[" in css or nonce in css:
            return False
        start = lowered.find("<style", start + 6)
    return True


def _placed_safely(page: str, at: int) -> bool:
    """The token at `at` is in text (after a whole tag or comment) or starts or continues a
    quoted value of a URL_ATTRIBUTES attribute, and does not extend an `&name` reference."""
    ampersand = page.rfind("&", 0, at)
    if ampersand >= 0 and _UNFINISHED_REFERENCE.fullmatch(page, ampersand, at):
        return False
    opened, closed = page.rfind("<", 0, at), page.rfind(">", 0, at)
    if opened < 0:
        return True
    if closed > opened:
        return _MARKUP.fullmatch(page, opened, closed + 1) is not None
    value = _VALUE_START.fullmatch(page, opened, at)
    return value is not None and value[1].lower() in URL_ATTRIBUTES
