"""A sequence as the dashboard's editor holds it, checked by the same rules as a launch.

The editor sends its whole draft (settings of each step and each message in each language) as
JSON. Here it becomes what a sequence is everywhere else: a definition (campaigns.definitions)
and template files, Markdown emails and plain texts (templates.markdown_body). Checking a draft
writes those files to a scratch folder beside the clinic's layouts and runs
campaigns.validation.validate_sequence on it, so the editor's problems are the launch check's
problems, in marketer words (campaigns.plain_words), plus what only a draft can lack: a message
in one of the languages.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from campaigns.content_render import LAYOUTS, materialize
from campaigns.content_store import check_paths
from campaigns.definitions import Sequence, Step
from campaigns.plain_words import LANGUAGE_WORDS, PlainFinding, reword
from campaigns.validation import validate_sequence
from core.errors import InputError
from core.languages import DEFAULT_LANGUAGE, LANGUAGES
from core.settings import Settings
from templates.markdown_body import EMAIL_SOURCE, SMS_SOURCE, EmailSource
from templates.renderer import TemplateRenderer


class Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class DraftMessage(Loose):
    subject: str = ""
    preheader: str = ""
    body: str = ""  # an email's Markdown
    text: str = ""  # a text message

    def written(self, channel: str) -> bool:
        return bool(self.text.strip() if channel == "sms" else self.body.strip())


class DraftStep(Loose):
    name: str = ""
    channel: str = "email"
    delay: str = "0d"
    days: str = "mon-sun"
    start: str = "09:00"
    end: str = "19:00"
    max_segments: int = 2
    #: a branch (Step.then) when the definitions have them: within, clicked, replied, otherwise
    then: dict[str, str] | None = None
    messages: dict[str, DraftMessage] = Field(default_factory=dict)

    def template(self, number: int) -> str:
        return f"{number:02d}-{self.name or 'step'}"


class Draft(Loose):
    name: str = ""
    title: str = ""
    reason: str = ""
    reason_es: str = ""
    custom_fields: list[str] = Field(default_factory=list)
    steps: list[DraftStep] = Field(default_factory=list)
    #: The definition this draft edits, as its TOML holds it (the stored current version's, else
    #: its file's; empty for a new sequence). The editor shows a few settings; every other one
    #: (audience and its consent, exit, trigger, re-entry, a step's timing before a visit, its
    #: lateness limit, `next`, its template's name) is kept from here. Set by the server
    #: (`editing`), never read from the page.
    _base: dict[str, Any] = PrivateAttr(default_factory=dict)

    def editing(self, base: Mapping[str, Any] | None) -> Draft:
        """This draft as an edit of `base` (see `_base`); returns itself."""
        self._base = copy.deepcopy(dict(base)) if base else {}
        return self

    def _base_steps(self) -> dict[str, dict[str, Any]]:
        return {step["name"]: step for step in self._base.get("steps", []) if "name" in step}

    def template_of(self, number: int, step: DraftStep) -> str:
        """The step's template name: an existing step keeps its own, a new one gets `NN-name`."""
        kept = self._base_steps().get(step.name, {}).get("template")
        return str(kept) if kept else step.template(number)

    def definition(self) -> dict[str, Any]:
        """The definition's data, as a TOML file would hold it: the base with the editor's
        fields written over it, its steps matched by name (a new step gets the defaults, a
        removed one is gone)."""
        before = self._base_steps()
        steps = []
        for number, step in enumerate(self.steps, start=1):
            data: dict[str, Any] = copy.deepcopy(before.get(step.name, {}))
            data.update(
                name=step.name,
                channel=step.channel,
                template=self.template_of(number, step),
                delay=step.delay or "0d",
                window={"days": step.days, "start": step.start, "end": step.end},
                max_segments=step.max_segments,
            )
            data.pop("then", None)
            if step.then and "then" in Step.model_fields:
                data["then"] = {key: value for key, value in step.then.items() if value}
            steps.append(data)
        definition: dict[str, Any] = copy.deepcopy(self._base)
        definition.update(
            name=self.name,
            title=self.title,
            template_folder=self.name,
            reason=self.reason,
            custom_fields=list(self.custom_fields),
            steps=steps,
        )
        translations = dict(definition.pop("translations", None) or {})
        translations.pop("es", None)
        if self.reason_es.strip():
            translations["es"] = {"reason": self.reason_es}
        if translations:
            definition["translations"] = translations
        return definition

    def files(self) -> dict[str, str]:
        """Template files by path under the sequence's folder (`01-welcome.email.md`,
        `es/02-nudge.sms.plain`), as the content store keeps them: the messages written so far."""
        found: dict[str, str] = {}
        for number, step in enumerate(self.steps, start=1):
            for language in LANGUAGES:
                message = step.messages.get(language)
                if message is None or not message.written(step.channel):
                    continue
                folder = "" if language == DEFAULT_LANGUAGE else f"{language}/"
                base = f"{folder}{self.template_of(number, step)}"
                if step.channel == "sms":
                    found[base + SMS_SOURCE] = message.text.strip() + "\n"
                else:
                    email = EmailSource(message.subject, message.preheader, message.body)
                    found[base + EMAIL_SOURCE] = email.dump()
        return found


@dataclass
class DraftReport:
    problems: list[PlainFinding] = field(default_factory=list)
    warnings: list[PlainFinding] = field(default_factory=list)
    sequence: Sequence | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": not self.problems,
            "problems": [finding.as_dict() for finding in self.problems],
            "warnings": [finding.as_dict() for finding in self.warnings],
        }


FIELD_WORDS = {
    "name": "The sequence's short name",
    "title": "The title",
    "reason": "The reason people get these messages",
    "delay": "The wait before this step",
    "window": "The sending days and hours",
    "max_segments": "The segment limit",
    "then": "The branch",
}


def parse_draft(data: Any) -> Draft:
    return Draft.model_validate(data if isinstance(data, dict) else {})


def build_sequence(draft: Draft, report: DraftReport) -> Sequence | None:
    """The draft as a Sequence, or None with each reason in the report."""
    if not draft.steps:
        report.problems.append(PlainFinding("Add at least one step."))
        return None
    if draft.name == LAYOUTS:
        report.problems.append(
            PlainFinding(
                f"The short name {LAYOUTS!r} is the clinic's layout folder: choose another."
            )
        )
        return None
    try:
        return Sequence.model_validate(draft.definition())
    except ValidationError as exc:
        for error in exc.errors():
            loc = [str(part) for part in error["loc"]]
            step = int(loc[1]) + 1 if len(loc) > 1 and loc[0] == "steps" else None
            named = next((FIELD_WORDS[part] for part in reversed(loc) if part in FIELD_WORDS), "")
            what = named or "This draft"
            message = str(error["msg"]).removeprefix("Value error, ")
            if "pattern" in error["type"]:
                message = "use lower-case letters, digits and dashes only (e.g. back-care)"
            prefix = f"Step {step}: " if step else ""
            report.problems.append(PlainFinding(f"{prefix}{what}: {message}", step))
        return None


def _missing_messages(draft: Draft, report: DraftReport) -> None:
    for number, step in enumerate(draft.steps, start=1):
        for language in LANGUAGES:
            message = step.messages.get(language)
            if message is None or not message.written(step.channel):
                words = LANGUAGE_WORDS.get(language, language)
                report.problems.append(
                    PlainFinding(
                        f"The {words} version of step {number} is missing.", number, language
                    )
                )


@contextmanager
def draft_renderer(draft: Draft) -> Iterator[TemplateRenderer]:
    """A renderer over the draft's files beside the clinic's fixed layouts, laid out as a stored
    version is (campaigns.content_render.materialize), in a scratch folder removed after."""
    if draft.name == LAYOUTS or not draft.name:
        raise InputError(f"a draft cannot be written to the folder {draft.name!r}")
    files = draft.files()
    check_paths(files)
    with tempfile.TemporaryDirectory(prefix="nurture-draft-") as scratch:
        root = materialize("draft", draft.name, files, Path(scratch))
        (root / draft.name).mkdir(exist_ok=True)  # a draft with no message yet
        yield TemplateRenderer(root)


def check_draft(draft: Draft, settings: Settings) -> DraftReport:
    """Every problem of the draft: what the editor shows as staff type, and Save refuses on."""
    report = DraftReport()
    sequence = build_sequence(draft, report)
    if sequence is None:
        return report
    report.sequence = sequence
    _missing_messages(draft, report)
    with draft_renderer(draft) as renderer:
        found = validate_sequence(sequence, settings, renderer)
    for line in found.problems:
        if "unknown template" not in line:  # a missing message, said above in plain words
            _once(report.problems, reword(line))
    for line in found.warnings:
        if "translation:" not in line and "no [translations." not in line:
            _once(report.warnings, reword(line))
    if not draft.reason_es.strip():
        report.warnings.append(
            PlainFinding("Say in Spanish why people get these messages (the Spanish footer).")
        )
    return report


def _once(bucket: list[PlainFinding], finding: PlainFinding) -> None:
    if finding not in bucket:
        bucket.append(finding)
