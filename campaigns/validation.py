"""`nurture campaigns validate` and the check before every launch: one set of rules, one wording.

A sequence is valid when every step's templates exist and parse, reach only allow-listed contact
fields, known variables and registered link destinations, render under StrictUndefined for every
sample contact, and the rendered messages meet the content rules (campaigns.content_rules); texts
fit their segment limit and go out only inside 08:00-21:00 local (TCPA). A text window that
reaches outside 08:00-20:00 is a warning: Florida, Oklahoma and Maryland numbers get texts only
in those hours (contacts.state_rules), so the engine narrows the window for them.

Every language the sequence has a folder for (templates/<folder>/es/) is checked the same way,
with the footer's reason in that language; a step it lacks is named (its contacts get the
English step), and each text's segments are reported per language, counted as sent (with
`[sms] smart_encoding` when it is on).

Sample links are signed with a validation-only key, so nothing a validation renders is a working
link; message and contact ids are large so link lengths (and SMS segments) are never understated.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any

from campaigns.compose import Composer
from campaigns.content_rules import (
    ClinicAsShown,
    Findings,
    check_email,
    check_sms,
    describe_ucs2,
)
from campaigns.definitions import TCPA_EARLIEST, TCPA_LATEST, Sequence, Step, load_sequence
from campaigns.paths import BOOKING_LINK
from campaigns.paths import problems as path_problems
from contacts.state_rules import RULES, STATE_EARLIEST, STATE_LATEST
from core.errors import NurtureError, ValidationFailed
from core.languages import DEFAULT_LANGUAGE, LANGUAGE_NAMES
from core.settings import Settings
from templates.audit import inspect_template, looks_like_health_field
from templates.links import LinkSigner
from templates.renderer import (
    CONTACT_FIELDS,
    KEPT_GLOBALS,
    RenderedEmail,
    RenderedSms,
    TemplateRenderer,
    TemplateRenderError,
    step_files,
)

SAMPLE_ID = 99_999_999
SAMPLE_KEY = "nurture-validation-only-key: links made with it never verify in production"
#: Jinja's own names that a template may use without the context providing them.
JINJA_NAMES = frozenset((*KEPT_GLOBALS, "loop", "self", "super", "varargs", "kwargs", "caller"))


@dataclass(frozen=True)
class SampleContact:
    """A made-up contact. `must_fit`: its texts must fit the step's segment limit; a contact with
    a name outside GSM-7 turns any text into UCS-2, which is reported as a warning only."""

    label: str
    first_name: str
    last_name: str
    must_fit: bool = True

    def as_contact(
        self, custom_fields: Iterable[str], language: str = DEFAULT_LANGUAGE
    ) -> dict[str, Any]:
        filler = "Sample" if self.first_name else ""
        return {
            "first_name": self.first_name,
            "last_name": self.last_name,
            "custom_fields": {name: filler for name in custom_fields},
            "language": language,
        }


SAMPLE_CONTACTS = (
    SampleContact("a typical name", "Maria", "Lopez"),
    SampleContact("no name on file", "", ""),
    SampleContact("a long name", "Maximiliano-Alejandro", "Villalobos-Castaneda"),
    SampleContact("a name outside GSM-7", "Nguyễn", "Thị Minh", must_fit=False),
)


@dataclass
class ValidationReport:
    sequence: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: language -> the steps (by name) it has no translation for
    untranslated: dict[str, list[str]] = field(default_factory=dict)
    #: one line per text step: its segments in each language, for a typical name
    segments: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, where: str, findings: Findings) -> None:
        for text in findings.problems:
            self._once(self.problems, f"{where}: {text}")
        for text in findings.warnings:
            self._once(self.warnings, f"{where}: {text}")

    @staticmethod
    def _once(bucket: list[str], text: str) -> None:
        if text not in bucket:
            bucket.append(text)


def sample_composer(settings: Settings, renderer: TemplateRenderer | None = None) -> Composer:
    signer = LinkSigner(SAMPLE_KEY, settings.web.public_base_url, settings.web.link_ttl_days)
    return Composer(settings, renderer or TemplateRenderer(), signer)


def template_files(step: Step) -> list[str]:
    return list(step_files(step.template, step.channel))


def _window_findings(step: Step, settings: Settings) -> Findings:
    out = Findings()
    if step.channel != "sms":
        return out
    window = step.window
    if window.start < TCPA_EARLIEST or window.end > TCPA_LATEST:
        out.problems.append(
            f"send window {window.start:%H:%M}-{window.end:%H:%M} lies outside 08:00-21:00, "
            "the hours texts are allowed in the recipient's time zone (TCPA)"
        )
    quiet = settings.scheduler
    opens = max(window.start, quiet.sms_quiet_hours_end)
    closes = min(window.end, quiet.sms_quiet_hours_start)
    if opens >= closes:
        out.problems.append("send window never overlaps the texting hours set in [scheduler]")
    elif opens < STATE_EARLIEST or closes > STATE_LATEST:
        out.warnings.append(_state_hours_warning(opens, closes))
    return out


def _state_hours_warning(opens: time, closes: time) -> str:
    """The step's texting hours reach outside the state rules' 08:00-20:00 (contacts.state_rules):
    the engine narrows them for those numbers, or never texts them when nothing is left."""
    *others, last = (rule.name for rule in RULES.values())
    names = f"{', '.join(others)} and {last}" if others else last
    laws = "; ".join(rule.law for rule in RULES.values())
    hours = f"{opens:%H:%M}-{closes:%H:%M}"
    allowed = f"{STATE_EARLIEST:%H:%M}-{STATE_LATEST:%H:%M}"
    narrowed = max(opens, STATE_EARLIEST), min(closes, STATE_LATEST)
    if narrowed[0] >= narrowed[1]:
        return (
            f"texting hours {hours} lie outside {allowed} local: numbers in {names} never get "
            f"this text ({laws})"
        )
    return (
        f"texting hours {hours} reach outside {allowed} local: numbers in {names} get this text "
        f"only {narrowed[0]:%H:%M}-{narrowed[1]:%H:%M} ({laws})"
    )


def _usage_findings(
    step: Step,
    sequence: Sequence,
    composer: Composer,
    context_names: set[str],
    folder: str | None = None,
) -> Findings:
    out = Findings()
    allowed_fields = (*CONTACT_FIELDS, *sequence.custom_fields)
    destinations = composer.destinations(sequence)
    for name in template_files(step):
        path = f"{folder or sequence.template_folder}/{name}"
        if not composer.renderer.exists(path):
            out.problems.append(f"unknown template {path} (no such file under templates/)")
            continue
        try:
            usage = inspect_template(composer.renderer, path)
        except TemplateRenderError as exc:
            out.problems.append(str(exc))
            continue
        for field_name in sorted(usage.contact_fields - set(allowed_fields)):
            out.problems.append(
                f"{path} reaches contact.{field_name}, which is not an allow-listed field "
                f"(allowed: {', '.join(allowed_fields)})"
            )
        if usage.whole_contact:
            out.problems.append(
                f"{path} uses `contact` as a whole; name a field (contact.first_name)"
            )
        for private in sorted(usage.private_attributes):
            out.problems.append(
                f"{path} reaches {private!r}: internals are not allowed in a template"
            )
        for variable in sorted(usage.variables - context_names - JINJA_NAMES):
            out.problems.append(f"{path} uses {variable!r}, which no message provides")
        for destination in sorted(usage.destinations - set(destinations)):
            out.problems.append(
                f"{path} links to {destination!r}, which is not a registered destination "
                f"(registered: {', '.join(sorted(destinations))})"
            )
        if usage.dynamic_destinations:
            out.problems.append(f"{path}: write each link destination as a quoted name")
    return out


def _segment_findings(
    step: Step, sample: SampleContact, rendered: RenderedSms, out: Findings
) -> None:
    info = rendered.info
    if info.segments > step.max_segments:
        text = (
            f"for a contact with {sample.label} the text is {info.segments} {info.encoding} "
            f"segments ({info.units} units); the limit is {step.max_segments} (max_segments)"
        )
        (out.problems if sample.must_fit else out.warnings).append(text)
    if info.ucs2_characters and sample.must_fit:
        out.warnings.append(
            f"the text is UCS-2 (67 characters a part, not 153) because of "
            f"{describe_ucs2(info.ucs2_characters)}"
        )


def _render_findings(
    step: Step,
    sequence: Sequence,
    composer: Composer,
    language: str = DEFAULT_LANGUAGE,
    counted: list[RenderedSms] | None = None,
) -> Findings:
    """Render for every sample contact in `language`; `counted` receives the typical
    contact's text, for the segments report."""
    out = Findings()
    shown = composer.context(sequence, step, {}, SAMPLE_ID, SAMPLE_ID)["clinic"]
    clinic = ClinicAsShown(**shown)
    for sample in SAMPLE_CONTACTS:
        contact = sample.as_contact(sequence.custom_fields, language)
        try:
            rendered = composer.render(sequence, step, contact, SAMPLE_ID, SAMPLE_ID)
        except NurtureError as exc:
            out.problems.append(f"does not render for a contact with {sample.label}: {exc}")
            continue
        if counted is not None and sample is SAMPLE_CONTACTS[0]:
            if isinstance(rendered, RenderedSms):
                counted.append(rendered)
        found = (
            check_email(rendered, clinic, sequence.reason_in(language), composer.signer)
            if isinstance(rendered, RenderedEmail)
            else check_sms(rendered, clinic, composer.signer)
        )
        out.problems += found.problems
        out.warnings += found.warnings
        if isinstance(rendered, RenderedSms):
            _segment_findings(step, sample, rendered, out)
    return out


def _sequence_findings(sequence: Sequence, composer: Composer) -> Findings:
    out = Findings()
    for name in sequence.custom_fields:
        if looks_like_health_field(name):
            out.problems.append(
                f"custom field {name!r} looks like health information; "
                "no health details may reach a message"
            )
        if name in CONTACT_FIELDS:
            out.problems.append(f"custom field {name!r} shadows the contact field of that name")
    for key, url in sequence.link_destinations.items():
        if not url.startswith(("https://", "http://")):
            out.problems.append(f"link destination {key!r} is not an http(s) URL: {url!r}")
    if not (composer.renderer.root / sequence.template_folder).is_dir():
        out.problems.append(f"unknown template folder templates/{sequence.template_folder}/")
    return out


def _branch_findings(step: Step, sequence: Sequence, composer: Composer) -> Findings:
    """A reply is a text (web.webhooks.twilio records texts only), so `replied` waits on a
    text step; `clicked` counts the booking link, so its step should carry one."""
    out = Findings()
    if step.then is None:
        return out
    if step.then.replied is not None and step.channel != "sms":
        out.problems.append(
            "`replied` waits for a text reply, so it belongs on a text step, not an email"
        )
    if step.then.clicked is not None:
        links: set[str] = set()
        for name in template_files(step):
            path = f"{sequence.template_folder}/{name}"
            if not composer.renderer.exists(path):
                return out  # reported as an unknown template
            try:
                links |= inspect_template(composer.renderer, path).destinations
            except NurtureError:
                return out  # the template's own problem is reported where it is checked
        if BOOKING_LINK not in links:
            out.warnings.append(
                "`clicked` waits for a click on the booking link, and this step's message "
                "has none: everyone takes `otherwise`"
            )
    return out


def validate_sequence(
    sequence: Sequence, settings: Settings, renderer: TemplateRenderer | None = None
) -> ValidationReport:
    """Every rule, every step, every sample contact; never raises for a rule broken."""
    composer = sample_composer(settings, renderer)
    report = ValidationReport(sequence.name)
    report.add(sequence.name, _sequence_findings(sequence, composer))
    for problem in path_problems(sequence):
        report.problems.append(f"{sequence.name}: {problem}")
    first = composer.context(sequence, sequence.steps[0], {}, SAMPLE_ID, SAMPLE_ID)
    context_names = set(first)
    languages = _languages(sequence, composer, report)
    for number, step in enumerate(sequence.steps, start=1):
        where = f"{sequence.name} step {number} ({step.name}, {step.channel})"
        report.add(where, _window_findings(step, settings))
        report.add(where, _branch_findings(step, sequence, composer))
        usage = _usage_findings(step, sequence, composer, context_names)
        report.add(where, usage)
        if any("unknown template" in problem for problem in usage.problems):
            continue  # rendering would only repeat the missing file
        texts: list[RenderedSms] = []
        report.add(where, _render_findings(step, sequence, composer, counted=texts))
        counts = [f"{DEFAULT_LANGUAGE} {_describe(texts)}"]
        for language in languages:
            translated = _translation_findings(step, sequence, composer, language, report)
            if translated is None:
                counts.append(f"{language} as in English")
                continue
            report.add(f"{where} [{language}]", translated)
            if any("unknown template" in problem for problem in translated.problems):
                continue
            texts = []
            found = _render_findings(step, sequence, composer, language, counted=texts)
            report.add(f"{where} [{language}]", found)
            counts.append(f"{language} {_describe(texts)}")
        if step.channel == "sms":
            report.segments.append(f"{where}: " + "; ".join(counts))
    return report


def _languages(sequence: Sequence, composer: Composer, report: ValidationReport) -> list[str]:
    """The languages other than English this sequence has a folder for."""
    found = []
    for language in composer.renderer.translations(sequence.template_folder):
        if language == DEFAULT_LANGUAGE or language not in LANGUAGE_NAMES:
            report.warnings.append(
                f"{sequence.name}: templates/{sequence.template_folder}/{language}/ is not a "
                f"language a contact can have ({', '.join(LANGUAGE_NAMES)}); nobody gets it"
            )
            continue
        found.append(language)
        if language not in sequence.translations:
            report.warnings.append(
                f"{sequence.name}: no [translations.{language}] reason: the "
                f"{LANGUAGE_NAMES[language]} footer says why in English"
            )
    return found


def _translation_findings(
    step: Step, sequence: Sequence, composer: Composer, language: str, report: ValidationReport
) -> Findings | None:
    """The step's template checks in `language`, or None (and a warning) when it lacks a
    translation and those contacts get the English step."""
    folder = sequence.template_folder
    missing = composer.renderer.missing_translation(folder, step.template, step.channel, language)
    if missing:
        number = sequence.steps.index(step) + 1
        report.untranslated.setdefault(language, []).append(step.name)
        report.warnings.append(
            f"{sequence.name} step {number} ({step.name}, {step.channel}) has no "
            f"{LANGUAGE_NAMES[language]} ({language}) translation: {', '.join(missing)} "
            "missing, so those contacts get it in English"
        )
        return None
    context_names = set(composer.context(sequence, step, {}, SAMPLE_ID, SAMPLE_ID))
    return _usage_findings(step, sequence, composer, context_names, f"{folder}/{language}")


def _describe(texts: list[RenderedSms]) -> str:
    if not texts:
        return "(does not render)"
    info = texts[0].info
    return f"{info.segments} segment(s), {info.encoding}, {info.units} units"


def validate_named(name: str | Path, settings: Settings) -> ValidationReport:
    """Load and validate; a definition that does not load is one problem, not a crash."""
    try:
        sequence = load_sequence(name)
    except NurtureError as exc:
        return ValidationReport(str(name), problems=[str(exc)])
    return validate_sequence(sequence, settings)


def ensure_valid(sequence: Sequence, settings: Settings) -> ValidationReport:
    """Raise ValidationFailed with every problem (the same lines `validate` prints)."""
    report = validate_sequence(sequence, settings)
    if report.problems:
        raise ValidationFailed(report.problems)
    return report
