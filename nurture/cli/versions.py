"""`nurture content export|import|history` and `nurture campaigns upgrade`: the content store's
commands (campaigns.content_store, .content_folder, .content_upgrade). Registered in main.py."""

from __future__ import annotations

from pathlib import Path

import typer

from core.errors import InputError
from nurture.cli.common import console, ready_app
from storage.db import transaction

app = typer.Typer(
    help="Sequences and templates, stored as versions: history, export and import.",
    no_args_is_help=True,
)


@app.command()
def history(name: str = typer.Argument(..., help="The sequence, e.g. spasm-relief.")) -> None:
    """Every version of a sequence: number, when, who, what changed."""
    from campaigns import content_store

    nurture = ready_app()
    with transaction(nurture.sessions, immediate=False) as session:
        found = content_store.versions(session, name)
        if not found:
            content_store.current_version(session, name)  # NotFound, one line
        for version in found:
            _say(
                f"v{version.number}  {version.created_at:%Y-%m-%d %H:%M} UTC  {version.author}  "
                f"{version.note}"
            )


@app.command("export")
def export(
    folder: Path = typer.Argument(..., help="Where to write (a new or empty folder)."),
) -> None:
    """Write every version of every sequence, and the current ones as campaigns/ and
    templates/, into FOLDER (byte for byte: an import gives the same versions back)."""
    from campaigns import content_folder

    if folder.exists() and any(folder.iterdir()):
        raise InputError(f"{folder} is not empty: export into a new folder")
    nurture = ready_app()
    with transaction(nurture.sessions, immediate=False) as session:
        warnings = content_folder.export_to(session, folder)
    for warning in warnings:
        console.print(f"[yellow]![/yellow] {warning}", highlight=False, soft_wrap=True)
    _say(f"exported to {folder}")


@app.command("import")
def import_(
    folder: Path = typer.Argument(
        ..., help="An export, or a folder with campaigns/ and templates/."
    ),
) -> None:
    """Read versions back from FOLDER; those the database has are skipped, and edited current
    files become a new version."""
    from campaigns import content_folder

    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder")
    nurture = ready_app()
    with transaction(nurture.sessions) as session:
        report = content_folder.import_from(session, folder, now=nurture.clock())
    for added in report.added:
        _say(f"added {added}")
    _say(f"{len(report.added)} version(s) added, {report.skipped} already there")


def upgrade(
    name: str = typer.Argument(..., help="The running campaign."),
    yes: bool = typer.Option(False, "--yes", help="Upgrade without asking."),
) -> None:
    """Move a running campaign to its sequence's newest version: steps already planned keep
    theirs, the steps not yet planned use the new one."""
    from campaigns import content_upgrade

    nurture = ready_app()
    with transaction(nurture.sessions, immediate=False) as session:
        plan = content_upgrade.plan_upgrade(session, name)
    _say(plan.describe())
    for change in plan.changes:
        _say(f"  {change}")
    if not yes and not typer.confirm("Upgrade?", default=False):
        raise typer.Exit(1)
    with transaction(nurture.sessions) as session:
        done = content_upgrade.upgrade(
            session, name, now=nurture.clock(), settings=nurture.settings
        )
    console.print(f"[green]{done.campaign} runs version {done.to_number}[/green]", highlight=False)


def _say(line: str) -> None:
    """A line as it is: paths and notes are never wrapped or read as markup."""
    console.print(line, markup=False, highlight=False, soft_wrap=True)
