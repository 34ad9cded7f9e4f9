"""`nurture contacts`: import and look after contacts."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from contacts.importer import import_csv
from nurture.cli.common import console, ready_app
from nurture.errors import InputError

app = typer.Typer(help="Contacts, consent and suppressions.", no_args_is_help=True)


def _count_rows(path: Path) -> int:
    with path.open("rb") as handle:
        return max(sum(1 for _ in handle) - 1, 0)


@app.command("import")
def import_(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV file to import."),
    source: str = typer.Option(..., "--source", help="Where these contacts came from."),
) -> None:
    """Import contacts from a CSV file; rejected rows go to a rejects CSV beside it."""
    nurture = ready_app()
    total = _count_rows(file)
    if total == 0:
        raise InputError(f"{file}: the file has no data rows")
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("Importing", total=total)
        summary = import_csv(
            nurture.sessions,
            file,
            source,
            default_timezone=nurture.settings.clinic.default_timezone,
            progress=lambda n: progress.advance(task, n),
        )
    console.print(
        f"inserted {summary.inserted}, updated {summary.updated}, "
        f"unchanged {summary.unchanged}, rejected {summary.rejected}"
    )
    if summary.rejects_path:
        console.print(f"rejected rows with reasons: {summary.rejects_path}")
