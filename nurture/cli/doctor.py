"""`nurture doctor`: is this install ready for production? One line per check (nurture.doctor),
exit code 0 when every check passes (warnings included), 1 when any fails."""

from __future__ import annotations

import typer
from rich.markup import escape

from core.settings import load_settings
from nurture.app import NurtureApp
from nurture.cli.common import console
from nurture.doctor import Context, Verdict, run_checks

COLOURS = {Verdict.OK: "green", Verdict.WARN: "yellow", Verdict.FAIL: "red"}


def doctor() -> None:
    """Check what production needs (HTTPS, secrets, schema, providers, webhooks, clocks)."""
    nurture = NurtureApp(settings=load_settings())  # not migrated: the schema is a check
    try:
        findings = run_checks(Context(nurture.settings, nurture.engine, nurture.clock))
    finally:
        nurture.dispose()
    for finding in findings:
        colour = COLOURS[finding.verdict]
        console.print(
            f"[{colour}]{finding.verdict}[/{colour}] {escape(finding.line)}",
            highlight=False,
            soft_wrap=True,
        )
    if any(finding.verdict is Verdict.FAIL for finding in findings):
        raise typer.Exit(1)
