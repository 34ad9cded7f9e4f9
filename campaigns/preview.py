"""`nurture campaigns preview`: what each step looks like for a contact, before anyone gets it.

Previews render through the same composer as sending, but sign links with the validation-only key
(campaigns.validation), so a preview file left on a disk holds no working unsubscribe link for a
real contact. The HTML file shows the subject, the email in a sandboxed frame, the text part, and
for a text the body with its encoding and segment count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment

from campaigns import PREVIEW_DIR
from campaigns.content_rules import describe_ucs2
from campaigns.definitions import Sequence, Step
from campaigns.paths import earliest
from campaigns.validation import (
    SAMPLE_CONTACTS,
    SAMPLE_ID,
    ValidationReport,
    sample_composer,
    validate_sequence,
)
from core.errors import InputError, NurtureError
from core.settings import Settings
from templates.renderer import RenderedEmail, RenderedSms, TemplateRenderer


@dataclass(frozen=True)
class StepPreview:
    number: int  # 1-based, as staff count steps
    step: Step
    send_after: timedelta  # from enrollment
    email: RenderedEmail | None = None
    sms: RenderedSms | None = None
    error: str | None = None
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Preview:
    sequence: Sequence
    contact_label: str
    steps: list[StepPreview] = field(default_factory=list)


def select_steps(sequence: Sequence, step: str | None) -> list[int]:
    """All steps, or one by its number (1-based) or its name."""
    if step is None:
        return list(range(len(sequence.steps)))
    if step.isdigit() and 1 <= int(step) <= len(sequence.steps):
        return [int(step) - 1]
    for index, candidate in enumerate(sequence.steps):
        if candidate.name == step:
            return [index]
    names = ", ".join(s.name for s in sequence.steps)
    raise InputError(f"--step {step}: {sequence.name} has steps 1-{len(sequence.steps)} ({names})")


def describe_delay(delta: timedelta) -> str:
    """`at enrollment`, `day 3`, `day 2 + 4h`, or `after 15s` for the compressed demo."""
    if not delta:
        return "at enrollment"
    if delta < timedelta(minutes=1):
        return f"after {int(delta.total_seconds())}s"
    hours, minutes = delta.seconds // 3600, delta.seconds % 3600 // 60
    extra = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return f"day {delta.days}" + (f" + {extra}" if extra else "")


def _findings(
    report: ValidationReport, sequence: Sequence, number: int
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    prefix = f"{sequence.name} step {number} ("
    return (
        tuple(p for p in report.problems if p.startswith(prefix)),
        tuple(w for w in report.warnings if w.startswith(prefix)),
    )


def build_preview(
    sequence: Sequence,
    settings: Settings,
    *,
    step: str | None = None,
    contact: Any | None = None,
    contact_id: int = SAMPLE_ID,
    contact_label: str = "",
    renderer: TemplateRenderer | None = None,
) -> Preview:
    """Render the chosen steps for `contact` (a model or mapping), or for the typical sample;
    from `renderer`'s templates (a stored version's, campaigns.content_render), else the files."""
    if contact is None:
        sample = SAMPLE_CONTACTS[0]
        contact = sample.as_contact(sequence.custom_fields)
        contact_label = contact_label or f"sample contact ({sample.first_name} {sample.last_name})"
    composer = sample_composer(settings, renderer)
    report = validate_sequence(sequence, settings, composer.renderer)
    preview = Preview(sequence, contact_label)
    offsets = earliest(sequence)  # along the ways through, branches included (issue 18)
    for index in select_steps(sequence, step):
        current = sequence.steps[index]
        problems, warnings = _findings(report, sequence, index + 1)
        fields: dict[str, Any] = {"problems": problems, "warnings": warnings}
        try:
            rendered = composer.render(sequence, current, contact, SAMPLE_ID, contact_id)
        except NurtureError as exc:
            fields["error"] = str(exc)
        else:
            key = "email" if isinstance(rendered, RenderedEmail) else "sms"
            fields[key] = rendered
            if isinstance(rendered, RenderedSms) and rendered.info.segments > current.max_segments:
                fields["problems"] += (
                    f"for {contact_label} this text is {rendered.info.segments} segments; "
                    f"the step allows {current.max_segments}",
                )
        preview.steps.append(StepPreview(index + 1, current, offsets[index], **fields))
    return preview


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Preview: {{ sequence.title }}</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 980px; color: #1d2733; }
 section { border: 1px solid #d5dde6; border-radius: 8px; padding: 16px 20px; margin: 20px 0; }
 h2 { margin: 0 0 8px; font-size: 18px; } .meta { color: #5b6b7a; font-size: 14px; }
 iframe { width: 100%; height: 720px; border: 1px solid #d5dde6; background: #fff; }
 pre { white-space: pre-wrap; background: #f4f6f8; padding: 12px; border-radius: 6px; }
 .sms { max-width: 360px; background: #e9f2fb; padding: 12px 14px; border-radius: 14px; }
 .problem { color: #a4262c; } .warning { color: #8a5a00; }
</style></head><body>
<h1>{{ sequence.title }} <span class="meta">({{ sequence.name }})</span></h1>
<p class="meta">Rendered for {{ contact_label }}. Links in this preview are signed with a
preview-only key and do not work.</p>
{% for item in steps %}
<section id="step-{{ item.number }}">
 <h2>Step {{ item.number }}: {{ item.step.name }} ({{ item.step.channel }})</h2>
 <p class="meta">{{ describe_delay(item.send_after) }} · template {{ item.step.template }}
  · window {{ item.step.window.days|join(", ") }}
  {{ item.step.window.start.strftime("%H:%M") }}-{{ item.step.window.end.strftime("%H:%M") }}
  local</p>
 {% for problem in item.problems %}<p class="problem">✗ {{ problem }}</p>{% endfor %}
 {% for warning in item.warnings %}<p class="warning">! {{ warning }}</p>{% endfor %}
 {% if item.error %}<p class="problem">Does not render: {{ item.error }}</p>{% endif %}
 {% if item.email %}
  <p><strong>Subject:</strong> {{ item.email.subject }}</p>
  <h3>HTML part</h3>
  <iframe sandbox title="HTML part of step {{ item.number }}"
   srcdoc="{{ item.email.html }}"></iframe>
  <h3>Text part</h3>
  <pre>{{ item.email.text }}</pre>
 {% endif %}
 {% if item.sms %}
  <p class="sms">{{ item.sms.body }}</p>
  <p class="meta">{{ item.sms.info.encoding }} · {{ item.sms.info.segments }}
   segment{{ "s" if item.sms.info.segments != 1 }} · {{ item.sms.info.units }}
   {{ "septets" if item.sms.info.encoding == "GSM-7" else "UTF-16 units" }}
   · limit {{ item.step.max_segments }}</p>
  {% if item.sms.info.ucs2_characters %}<p class="warning">UCS-2 because of
   {{ describe_ucs2(item.sms.info.ucs2_characters) }}</p>{% endif %}
 {% endif %}
</section>
{% endfor %}
</body></html>
"""


def preview_path(preview: Preview, folder: Path = PREVIEW_DIR) -> Path:
    if len(preview.steps) == 1:
        return folder / f"{preview.sequence.name}-step{preview.steps[0].number}.html"
    return folder / f"{preview.sequence.name}.html"


def write_html(preview: Preview, folder: Path = PREVIEW_DIR) -> Path:
    """Write the preview page; the email HTML goes into an iframe's srcdoc, escaped, sandboxed."""
    page = Environment(autoescape=True).from_string(PAGE)
    path = preview_path(preview, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        page.render(
            sequence=preview.sequence,
            contact_label=preview.contact_label,
            steps=preview.steps,
            describe_delay=describe_delay,
            describe_ucs2=describe_ucs2,
        ),
        encoding="utf-8",
    )
    return path
