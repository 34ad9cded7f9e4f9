"""Renders staff-authored templates in Jinja2's immutable sandbox.

StrictUndefined turns a missing variable into an error at validation time rather than a blank at
send time. Templates see only what the composer's context hands them: an allow-list of contact
fields, the clinic's public details and link helpers, never a model object (no health details, no
`__class__` walks). The sandbox also refuses arithmetic that would build huge values, so a typo in
a template cannot stall a worker. Compiled templates are cached (Jinja's own LRU, no reload).
Email CSS is inlined with css-inline for clients that drop <style>.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import css_inline
from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    UndefinedError,
    select_autoescape,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from nurture.errors import NurtureError
from templates import TEMPLATES_DIR
from templates.sms_segments import SmsInfo, sms_info

#: Contact fields a template may use. Nothing else of a contact reaches a message.
CONTACT_FIELDS = ("first_name", "last_name")
#: Jinja globals kept: lipsum, cycler and joiner have no use in a message.
KEPT_GLOBALS = ("range", "dict", "namespace")
MAX_POWER = 64
MAX_REPEAT = 10_000

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
    if isinstance(contact, Mapping):
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

    def _render(self, name: str, context: Mapping[str, Any]) -> str:
        try:
            return self.env.get_template(name).render(context)
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
        subject = " ".join(self._render(f"{base}.subject.txt", context).split())
        html = _inline_css(self._render(f"{base}.html", context))
        text = self._render(f"{base}.txt", context).strip() + "\n"
        return RenderedEmail(subject=subject, html=html, text=text)

    def render_sms(self, folder: str, step: str, context: Mapping[str, Any]) -> RenderedSms:
        body = " ".join(self._render(f"{folder}/{step}.{SMS_PART}", context).split())
        return RenderedSms(body=body, info=sms_info(body))


@lru_cache(maxsize=1)
def _inliner() -> css_inline.CSSInliner:
    return css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)


def _inline_css(html: str) -> str:
    return _inliner().inline(html)
