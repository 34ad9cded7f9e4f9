"""Content commands: `nurture campaigns validate`, `nurture campaigns preview`, `nurture sms-info`.

Registered in nurture/cli/main.py. Validation prints the same problem lines that a refused launch
prints (both raise ValidationFailed, which main.py reports one line per problem).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.text import Text

from campaigns import PREVIEW_DIR
from campaigns.definitions import list_sequences, load_sequence
from core.errors import InputError, NotFound, ValidationFailed
from core.settings import load_settings
from nurture.cli.common import console, err_console, ready_app
from storage.db import transaction
from storage.models import Contact
from templates.sms_segments import sms_info as count_segments

# Each command imports what it uses (campaigns.preview and .validation, rich's panels, click, which
# typer does not load): the worker process stays lean, it loads only what it runs.
if TYPE_CHECKING:
    from rich.panel import Panel

    from campaigns.preview import Preview, StepPreview


def validate(
    name: str | None = typer.Argument(
        None,
        help="A sequence: its stored current version (else campaigns/NAME.toml), or a .toml "
        "path; default: every sequence.",
    ),
) -> None:
    """Check sequences before launch: templates, allow-listed fields, links, footers, STOP wording,
    segment limits and TCPA hours."""
    from campaigns.validation import validate_named
    from nurture.cli.versions import stored_reports

    settings = load_settings()
    reports = stored_reports(settings, name)  # the stored current versions, when there are
    if reports is None:
        names = [name] if name else list_sequences()
        if not names:
            raise NotFound("no sequence definitions in campaigns/")
        reports = [validate_named(each, settings) for each in names]
    problems: list[str] = []
    for report in reports:
        for warning in report.warnings:
            console.print(f"[yellow]![/yellow] {warning}", highlight=False, soft_wrap=True)
        for line in report.segments:
            console.print(f"[dim]· {line}[/dim]", highlight=False, soft_wrap=True)
        if report.ok:
            console.print(f"[green]✓[/green] {report.sequence}: valid", highlight=False)
        problems += report.problems
    if problems:
        raise ValidationFailed(problems)


def _step_panel(item: StepPreview) -> Panel:
    from rich.panel import Panel

    from campaigns.content_rules import describe_ucs2
    from campaigns.preview import describe_delay

    step = item.step
    window = step.window
    title = f"Step {item.number}: {step.name} ({step.channel}, {describe_delay(item.send_after)})"
    body = Text()
    body.append(
        f"template {step.template} · {', '.join(window.days)} "
        f"{window.start:%H:%M}-{window.end:%H:%M} local\n",
        style="dim",
    )
    for problem in item.problems:
        body.append(f"✗ {problem}\n", style="red")
    for warning in item.warnings:
        body.append(f"! {warning}\n", style="yellow")
    if item.error:
        body.append(f"Does not render: {item.error}\n", style="red")
    if item.email:
        body.append("Subject: ", style="bold")
        body.append(f"{item.email.subject}\n\n")
        body.append(item.email.text)
    if item.sms:
        info = item.sms.info
        body.append(f"{item.sms.body}\n\n")
        unit = "septets" if info.encoding == "GSM-7" else "UTF-16 units"
        body.append(
            f"{info.encoding} · {info.segments} segment(s) · {info.units} {unit} · "
            f"limit {step.max_segments}",
            style="bold",
        )
        if info.ucs2_characters:
            body.append(f"\nUCS-2 because of {describe_ucs2(info.ucs2_characters)}", style="yellow")
    border = "red" if item.problems or item.error else "green"
    return Panel(body, title=title, title_align="left", border_style=border)


def show_preview(preview: Preview) -> None:
    console.print(f"[bold]{preview.sequence.title}[/bold] for {preview.contact_label}")
    for item in preview.steps:
        console.print(_step_panel(item))


def preview(
    name: str = typer.Argument(
        ..., help="A sequence: its stored current version (else campaigns/NAME.toml), or a path."
    ),
    step: str | None = typer.Option(None, "--step", help="Step number (1-based) or name."),
    contact: int | None = typer.Option(None, "--contact", help="Render for this contact id."),
    sample: bool = typer.Option(False, "--sample", help="Render for a sample contact (default)."),
    out: Path = typer.Option(PREVIEW_DIR, "--out", help="Folder for the HTML preview file."),
) -> None:
    """Render a sequence's steps to the terminal and to an HTML preview file."""
    from campaigns.preview import build_preview
    from campaigns.preview import write_html as write_preview
    from nurture.cli.versions import stored_renderer

    if contact is not None and sample:
        raise InputError("use --contact ID or --sample, not both")
    settings = load_settings()
    stored = stored_renderer(settings, name)  # the stored current version, when there is one
    sequence, renderer = stored if stored is not None else (load_sequence(name), None)
    if contact is None:
        result = build_preview(sequence, settings, step=step, renderer=renderer)
    else:
        nurture = ready_app()
        with transaction(nurture.sessions) as session:
            row = session.get(Contact, contact)
            if row is None or row.erased_at is not None:
                raise NotFound(f"no contact with id {contact}")
            result = build_preview(
                sequence,
                nurture.settings,
                step=step,
                contact=row,
                contact_id=row.id,
                contact_label=f"contact {row.id}",
                renderer=renderer,
            )
        nurture.dispose()
    show_preview(result)
    path = write_preview(result, out)
    console.print(f"HTML preview: {path}", highlight=False, soft_wrap=True)


def _ndjson_line(number: int, line: bytes, smart_encoding: bool = False) -> tuple[str, bool]:
    """One output line for one input line, and whether it was a JSON string."""
    try:
        value = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        return json.dumps({"error": f"line {number}: not JSON: {exc}"}), False
    if not isinstance(value, str):
        return json.dumps({"error": f"line {number}: expected a JSON string"}), False
    return json.dumps(count_segments(value, smart_encoding=smart_encoding).as_dict()), True


def sms_info(
    text: str | None = typer.Argument(None, help="The text of a message."),
    ndjson: bool = typer.Option(
        False, "--ndjson", help="Read one JSON string per line on stdin; one result per line."
    ),
    smart_encoding: bool | None = typer.Option(
        None,
        "--smart-encoding/--no-smart-encoding",
        help="Count it as Smart Encoding sends it (á -> a...); default: [sms] smart_encoding.",
    ),
) -> None:
    """Encoding (GSM-7 or UCS-2) and billed segments of a text, as JSON, counted as it is sent."""
    import click

    if (text is None) == (not ndjson):
        raise InputError("give a TEXT argument or --ndjson (one JSON string per line on stdin)")
    if smart_encoding is None:
        smart_encoding = load_settings().sms.smart_encoding
    if text is not None:
        info = count_segments(text, smart_encoding=smart_encoding)
        click.echo(json.dumps(info.as_dict()))
        if info.ucs2_characters:
            forced = ", ".join(f"{c!r} U+{ord(c):04X}" for c in info.ucs2_characters)
            err_console.print(f"UCS-2 because of: {forced}", highlight=False)
        return
    # Bytes in (each line is decoded as JSON, whatever the terminal's encoding), text out.
    stdin, stdout = sys.stdin.buffer, sys.stdout
    bad = 0
    for number, line in enumerate(stdin, start=1):
        if not line.strip():
            continue  # a blank line (e.g. a trailing one) is not a record
        output, ok = _ndjson_line(number, line, smart_encoding)
        bad += not ok
        stdout.write(output + "\n")
    stdout.flush()
    if bad:
        raise InputError(f"{bad} line(s) were not JSON strings; see the error objects")
