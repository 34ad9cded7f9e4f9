"""Renders staff-authored templates in Jinja2's immutable sandbox, with `Template.render`.

StrictUndefined turns a missing variable into an error at validation time rather than a blank at
send time. Templates see only what the composer's context hands them: an allow-list of contact
fields, the clinic's public details and link helpers, never a model object (no health details, no
`__class__` walks). The sandbox also refuses arithmetic that would build huge values, so a typo in
a template cannot stall a worker. HTML is autoescaped (by file name). Email CSS is inlined once
per HTML template, when it is loaded (templates/inline_css.py), so a message is only rendered.

Each language other than English has its own folder beside a sequence's English files
(`spasm-relief/es/01-welcome.html`). A step is read from the contact's language's folder when
every part of it is there, and otherwise wholly in English: an email never mixes a Spanish
subject with an English body (`language_folder`, the one rule the composer and validation use).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    select_autoescape,
)
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from core.errors import NurtureError
from core.languages import DEFAULT_LANGUAGE
from templates import TEMPLATES_DIR
from templates.inline_css import InliningLoader
from templates.markdown_body import StaffWrittenLoader
from templates.sms_segments import SmsInfo, sms_info

#: Contact fields a template may use. Nothing else of a contact reaches a message.
CONTACT_FIELDS = ("first_name", "last_name")
#: Jinja globals kept: none. range, dict, namespace, lipsum, cycler and joiner have no use in a
#: message, and each global is copied into every render's context (about 20 µs an email).
KEPT_GLOBALS: tuple[str, ...] = ()
MAX_POWER = 64
MAX_REPEAT = 10_000

EMAIL_PARTS = ("subject.txt", "html", "txt")
SMS_PART = "sms.txt"


def step_files(template: str, channel: str) -> tuple[str, ...]:
    """The files one step is made of: subject, HTML and text for an email; one file for a text."""
    parts = EMAIL_PARTS if channel == "email" else (SMS_PART,)
    return tuple(f"{template}.{part}" for part in parts)


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
    """The immutable sandbox, plus limits on `**` and on repeating strings and lists with `*`.

    Through the sandbox's documented operator interception (`intercepted_binops` and
    `call_binop`, https://jinja.palletsprojects.com/en/stable/sandbox/#operator-intercepting);
    the sandbox already caps `range()` at 100,000 items."""

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


def make_environment(loader: InliningLoader) -> MessageSandbox:
    env = MessageSandbox(
        loader=loader,
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,  # a loaded template never changes: Jinja's cache never re-checks
        # The templates are the repository's files, a bounded set: -1 keeps them in a plain dict,
        # never evicted, instead of an LRU that locks on every lookup (each `{% extends %}` is
        # one more lookup per render).
        cache_size=-1,
    )
    env.globals = {name: env.globals[name] for name in KEPT_GLOBALS}
    return env


class TemplateRenderer:
    def __init__(self, root: Path = TEMPLATES_DIR) -> None:
        self.root = root
        #: steps written in the dashboard (Markdown emails, plain texts) load as Jinja templates
        self.files = StaffWrittenLoader(root)
        self.loader = InliningLoader(root, self.files)
        self.env = make_environment(self.loader)
        #: (folder, template, channel, language) -> the folder the step is read from; the
        #: files never change while the process runs (auto_reload is off too)
        self._folders: dict[tuple[str, str, str, str], str] = {}

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
            lineno = getattr(exc, "lineno", None)  # a syntax error's; a runtime error has none
            where = f" line {lineno}" if lineno else ""
            raise TemplateRenderError(f"{name}{where}: {exc.message}") from None
        except NurtureError as exc:  # e.g. an unregistered link destination
            raise TemplateRenderError(f"{name}: {exc}") from None
        except (TypeError, ValueError, AttributeError, KeyError, ArithmeticError) as exc:
            raise TemplateRenderError(f"{name}: {type(exc).__name__}: {exc}") from None

    def exists(self, name: str) -> bool:
        return self.files.exists(name)

    def missing_translation(
        self, folder: str, template: str, channel: str, language: str
    ) -> list[str]:
        """The step's files that `language` lacks, as paths under the templates folder."""
        return [
            f"{folder}/{language}/{name}"
            for name in step_files(template, channel)
            if not self.exists(f"{folder}/{language}/{name}")
        ]

    def language_folder(self, folder: str, template: str, channel: str, language: str) -> str:
        """Where the step's files are read for a contact in `language`: its translation when
        complete, else the English files (the fallback only where a translation is missing)."""
        if language == DEFAULT_LANGUAGE or "/" in language or language.startswith("."):
            return folder
        key = (folder, template, channel, language)
        found = self._folders.get(key)
        if found is None:
            missing = self.missing_translation(folder, template, channel, language)
            found = folder if missing else f"{folder}/{language}"
            self._folders[key] = found
        return found

    def translations(self, folder: str) -> tuple[str, ...]:
        """The languages a sequence's folder has a subfolder for, e.g. ("es",)."""
        base = self.root / folder
        if not base.is_dir():
            return ()
        return tuple(sorted(path.name for path in base.iterdir() if path.is_dir()))

    def source(self, name: str) -> str:
        """The template's text as written (before CSS inlining), through the loader, so a name
        cannot leave the root."""
        try:
            return self.loader.files.get_source(self.env, name)[0]
        except TemplateNotFound:
            raise TemplateRenderError(f"template {name} not found under {self.root}") from None
        except TemplateSyntaxError as exc:  # a staff-written step with more than placeholders
            raise TemplateRenderError(f"{name}: {exc.message}") from None

    def render_email(self, folder: str, step: str, context: Mapping[str, Any]) -> RenderedEmail:
        base = f"{folder}/{step}"
        subject = " ".join(self._render(f"{base}.subject.txt", context).split())
        html = self._render(f"{base}.html", context)
        text = self._render(f"{base}.txt", context).strip() + "\n"
        return RenderedEmail(subject=subject, html=html, text=text)

    def render_sms(self, folder: str, step: str, context: Mapping[str, Any]) -> RenderedSms:
        body = " ".join(self._render(f"{folder}/{step}.{SMS_PART}", context).split())
        return RenderedSms(body=body, info=sms_info(body))
