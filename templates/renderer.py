"""Renders staff-authored templates in Jinja2's immutable sandbox.

StrictUndefined turns a missing variable into an error at validation time rather than a blank at
send time. Templates see only what the composer's context hands them: an allow-list of contact
fields, the clinic's public details and link helpers, never a model object (no health details, no
`__class__` walks). The sandbox also refuses arithmetic that would build huge values, so a typo in
a template cannot stall a worker. Email CSS is inlined with css-inline for clients that drop
<style>, once per page skeleton (templates/skeletons.py).

This is the dispatcher's hot path, so a render skips what Template.render redoes every time:
templates are kept in a plain dict (auto_reload is off, so a loaded template never changes),
and each message's variables are merged with the few kept globals once, then handed to every
part as a shared context, instead of Jinja merging its ChainMap of globals on each render.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import css_inline
from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    UndefinedError,
    select_autoescape,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from core.errors import NurtureError
from templates import TEMPLATES_DIR
from templates.bare_urls import URL_VALUES, names_read, prints_urls_bare
from templates.memo import RenderMemo, Tokenized
from templates.skeletons import Skeletons, Slots
from templates.sms_segments import SmsInfo, sms_info

#: Contact fields a template may use. Nothing else of a contact reaches a message.
CONTACT_FIELDS = ("first_name", "last_name")
#: Jinja globals kept: lipsum, cycler and joiner have no use in a message.
KEPT_GLOBALS = ("range", "dict", "namespace")
MAX_POWER = 64
MAX_REPEAT = 10_000
_DICT_ATTRIBUTES = frozenset(dir(dict))

EMAIL_PARTS = ("subject.txt", "html", "txt")
SMS_PART = "sms.txt"


class TemplateRenderError(NurtureError):
    """A template that cannot render: missing variable, syntax error, sandbox violation."""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class RenderedSms:
    body: str
    info: SmsInfo


def contact_view(contact: Any, custom_allow: tuple[str, ...] = ()) -> dict[str, Any]:
    """The allow-listed slice of a contact (model or mapping) that templates may read."""
    get: Callable[[str], Any]
    if type(contact) is dict or isinstance(contact, Mapping):  # a dict: no ABC check per message
        get = contact.get
    else:

        def get(name: str) -> Any:
            return getattr(contact, name, None)

    view = {field: get(field) or "" for field in CONTACT_FIELDS}
    custom = get("custom_fields") or {}
    for key in custom_allow:
        view[key] = custom.get(key, "")
    return view


class MessageSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, plus limits on `**` and on repeating strings and lists with `*`."""

    intercepted_binops = frozenset(("*", "**"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loaded: dict[str, Template] = {}

    def get_template(
        self,
        name: str | Template,
        parent: str | None = None,
        globals: MutableMapping[str, Any] | None = None,
    ) -> Template:
        """Loaded templates from a dict: `{% extends %}` looks its layout up on every render, and
        Jinja's LRU takes a lock and a weakref per lookup."""
        if isinstance(name, Template) or globals is not None:
            return super().get_template(name, parent, globals)
        key = name if parent is None else self.join_path(name, parent)
        template = self._loaded.get(key)
        if template is None:
            template = self._loaded[key] = super().get_template(key)
        return template

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        """A plain dict rather than Jinja's ChainMap over the environment's globals: each context
        copies the globals' keys, and iterating a ChainMap is slow. The globals are set once, in
        make_environment, before any template loads."""
        return {**self.globals, **(d or {})}

    def getattr(self, obj: Any, attribute: str) -> Any:
        """`clinic.name` on a plain dict without the AttributeError the sandbox first raises and
        catches (a fifth of an email's template time). The same value: a dict has no attribute
        outside dir(dict), so the sandbox falls back to the item, unchecked, just the same."""
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_POWER:
            raise SecurityError(f"exponent {right} is larger than {MAX_POWER}")
        if operator == "*":
            for sized, count in ((left, right), (right, left)):
                if isinstance(sized, str | list | tuple) and isinstance(count, int):
                    if len(sized) * count > MAX_REPEAT:
                        raise SecurityError(f"repetition longer than {MAX_REPEAT} items")
        return super().call_binop(context, operator, left, right)


def make_environment(root: Path) -> MessageSandbox:
    env = MessageSandbox(
        loader=FileSystemLoader(str(root)),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,
        cache_size=400,
    )
    env.globals = {name: env.globals[name] for name in KEPT_GLOBALS}
    return env


class TemplateRenderer:
    def __init__(self, root: Path = TEMPLATES_DIR) -> None:
        self.root = root
        self.env = make_environment(root)
        self.skeletons = Skeletons(_inline_css)
        self.memo = RenderMemo(self.env)
        self._bare: dict[tuple[str, bool], bool] = {}  # (template name, escaped) → bare
        self._names: dict[str, frozenset[str] | None] = {}  # template name → names_read

    def _variables(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """One message's variables with the kept globals, shared by all its parts (a template
        cannot change them: `{% set %}` writes to its own context)."""
        return {**self.env.globals, **context}

    def _render(self, name: str, variables: dict[str, Any]) -> str:
        """Template.render without its per-call merge of the globals (already in `variables`)."""
        try:
            template = self.env.get_template(name)
            try:
                context = template.new_context(variables, shared=True)
                return self.env.concat(template.root_render_func(context))
            except Exception:
                self.env.handle_exception()  # as Template.render does: Jinja's traceback
        except TemplateNotFound as exc:
            raise TemplateRenderError(f"template {exc.name} not found under {self.root}") from None
        except UndefinedError as exc:
            raise TemplateRenderError(f"{name}: missing variable: {exc.message}") from None
        except SecurityError as exc:
            raise TemplateRenderError(f"{name}: not allowed in a template: {exc}") from None
        except TemplateError as exc:
            where = f" line {exc.lineno}" if getattr(exc, "lineno", None) else ""
            raise TemplateRenderError(f"{name}{where}: {exc.message}") from None
        except NurtureError as exc:  # e.g. an unregistered link destination
            raise TemplateRenderError(f"{name}: {exc}") from None
        except (TypeError, ValueError, AttributeError, KeyError, ArithmeticError) as exc:
            raise TemplateRenderError(f"{name}: {type(exc).__name__}: {exc}") from None

    def _html(self, name: str, variables: dict[str, Any], frozen: dict[str, Any]) -> str:
        """The inlined HTML part: its skeleton filled with this message's URLs when the template
        allows it, else (or whenever a check fails, or the template raises) rendered and inlined
        in full."""
        if self._prints_urls_bare(name, escaped=True):
            key = self._memo_key(name, variables, frozen)
            found = self._tokenized(name, variables, key, always=True)
            page = None if found is None else self.skeletons.page(found[0].output, found[1])
            if page is not None:
                return page
        return _inline_css(self._render(name, variables))

    def _text(self, name: str, variables: dict[str, Any], frozen: dict[str, Any]) -> str:
        """A text part (subject, plain text, SMS): its memoized tokenized render filled with
        this message's URLs as they are, else rendered in full."""
        if self._prints_urls_bare(name, escaped=False):
            key = self._memo_key(name, variables, frozen)
            found = self._tokenized(name, variables, key, always=False)
            text = None if found is None else found[1].fill(found[0].parts)
            if text is not None:
                return text
        return self._render(name, variables)

    def _tokenized(
        self, name: str, variables: dict[str, Any], key: tuple[Any, ...] | None, *, always: bool
    ) -> tuple[Tokenized, Slots] | None:
        """`name` rendered with a token for each URL, from the memo when a message with the same
        values read had it rendered, and this message's slots. Rendered here (and kept, from
        the second message with its key on) when `always`, or when the memo admits the key: a
        tokenized render costs more than a plain one. None: render it in full (which raises the
        template's own error, if any)."""
        slots = self.skeletons.slots()
        if key is not None:
            kept = self.memo.get(key)
            if kept is not None:
                if slots.replay(kept.origins, variables):
                    return kept, slots
                slots = self.skeletons.slots()
        admitted = key is not None and self.memo.admit(key)
        if not (always or admitted):
            return None
        reads = self.memo.reads(name) if key is not None else None
        tokenized = slots.tokenize(variables, URL_VALUES if reads is None else reads.urls)
        try:
            output = self._render(name, tokenized) if slots.usable else None
        except Exception:  # rendered again with the real values, to raise their error
            output = None
        parts = None if output is None else self.skeletons.split(output)
        if output is None or parts is None or not slots.usable:
            return None
        rendered = Tokenized(output, parts, tuple(slots.origins))
        if admitted and key is not None:
            self.memo.put(key, rendered)
        return rendered, slots

    def _memo_key(
        self, name: str, variables: dict[str, Any], frozen: dict[str, Any]
    ) -> tuple[Any, ...] | None:
        try:
            return self.memo.key(name, variables, frozen)
        except TemplateError:  # missing or broken: the full render reports it
            return None

    def _prints_urls_bare(self, name: str, *, escaped: bool) -> bool:
        bare = self._bare.get((name, escaped))
        if bare is None:
            try:
                bare = prints_urls_bare(self.env, name, escaped=escaped)
            except TemplateError:  # a template missing or broken: the plain render reports it
                bare = False
            self._bare[(name, escaped)] = bare
        return bare

    def sms_reads(self, folder: str, step: str, variable: str) -> bool:
        """Whether a text's template (or one it reaches) may read `variable`, so the composer
        signs only the links a text prints (a text's way out is STOP, not a link)."""
        name = f"{folder}/{step}.{SMS_PART}"
        if name not in self._names:
            try:
                self._names[name] = names_read(self.env, name)
            except TemplateError:  # missing or broken: rendering reports it
                self._names[name] = None
        names = self._names[name]
        return names is None or variable in names

    def exists(self, name: str) -> bool:
        return (self.root / name).is_file()

    def source(self, name: str) -> str:
        """The template's text, through the loader (so a name cannot leave the root)."""
        try:
            return self.env.loader.get_source(self.env, name)[0]  # type: ignore[union-attr]
        except TemplateNotFound:
            raise TemplateRenderError(f"template {name} not found under {self.root}") from None

    def render_email(self, folder: str, step: str, context: Mapping[str, Any]) -> RenderedEmail:
        base = f"{folder}/{step}"
        variables = self._variables(context)
        frozen: dict[str, Any] = {}  # the memo's keys, shared by the parts
        subject = " ".join(self._text(f"{base}.subject.txt", variables, frozen).split())
        html = self._html(f"{base}.html", variables, frozen)
        text = self._text(f"{base}.txt", variables, frozen).strip() + "\n"
        return RenderedEmail(subject=subject, html=html, text=text)

    def render_sms(self, folder: str, step: str, context: Mapping[str, Any]) -> RenderedSms:
        variables = self._variables(context)
        body = " ".join(self._text(f"{folder}/{step}.{SMS_PART}", variables, {}).split())
        return RenderedSms(body=body, info=sms_info(body))


@lru_cache(maxsize=1)
def _inliner() -> css_inline.CSSInliner:
    return css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)


def _inline_css(html: str) -> str:
    return _inliner().inline(html)
