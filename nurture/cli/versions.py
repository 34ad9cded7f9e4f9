"""`nurture content export|import|history` and `nurture campaigns upgrade`: the content store's
commands (campaigns.content_store, .content_folder, .content_upgrade). Registered in main.py."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from core.errors import InputError
from core.settings import Settings
from nurture.cli.common import console, ready_app
from storage.db import transaction

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from campaigns.definitions import Sequence
    from campaigns.validation import ValidationReport
    from templates.renderer import TemplateRenderer

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
    by: str | None = typer.Option(
        None, "--as", help="Your staff account's email: an owner's move records its approval."
    ),
) -> None:
    """Move a running campaign to its sequence's newest version: steps already planned keep
    theirs, the steps not yet planned use the new one.

    A new version is new content going out, so the launch's review rule applies: an owner
    approved it (`campaigns approve`), or an owner moves (--as), or `[review]
    editors_may_launch` is true (campaigns.review.upgrade)."""
    from campaigns import content_upgrade, review
    from nurture.cli.review import reviewer

    nurture = ready_app()
    who = reviewer(nurture, by)
    with transaction(nurture.sessions, immediate=False) as session:
        plan = content_upgrade.plan_upgrade(session, name)
    _say(plan.describe())
    for change in plan.changes:
        _say(f"  {change}")
    if not yes and not typer.confirm("Upgrade?", default=False):
        raise typer.Exit(1)
    with transaction(nurture.sessions) as session:
        done = review.upgrade(
            session,
            name,
            who,
            now=nurture.clock(),
            settings=nurture.settings,
            seen=plan.to_number,
        )
    console.print(f"[green]{done.campaign} runs version {done.to_number}[/green]", highlight=False)


def _say(line: str) -> None:
    """A line as it is: paths and notes are never wrapped or read as markup."""
    console.print(line, markup=False, highlight=False, soft_wrap=True)


@contextmanager
def stored_session(settings: Settings) -> Iterator[Session | None]:
    """A session on the configured database when it has a content store; None when there is no
    database yet (which is not created for this) or no store in it."""
    from sqlalchemy import inspect
    from sqlalchemy.engine import make_url

    from storage.db import make_engine, session_factory

    url = make_url(settings.database.url)
    if url.drivername.startswith("sqlite") and (
        not url.database or url.database == ":memory:" or not Path(url.database).is_file()
    ):
        yield None
        return
    engine = make_engine(settings.database.url)
    try:
        if not inspect(engine).has_table("content_versions"):
            yield None
            return
        with session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def stored_reports(settings: Settings, name: str | None) -> list[ValidationReport] | None:
    """`campaigns validate` on the stored current versions: NAME's, or every sequence's; None
    when there is nothing stored to validate (a .toml path, a name the store lacks, no database
    yet), and the files are validated as before."""
    from campaigns import content_render, content_store
    from core.errors import NotFound

    if name is not None and name.endswith(".toml"):
        return None
    with stored_session(settings) as session:
        if session is None:
            return None
        names = [name] if name is not None else content_store.sequence_names(session)
        reports = []
        for each in names:
            try:
                version = content_store.current_version(session, each)
            except NotFound:
                return None
            _say(f"· {each}: stored version {version.number} ({version.author})")
            reports.append(content_render.validate_version(session, version, settings))
        return reports or None


def stored_renderer(settings: Settings, name: str) -> tuple[Sequence, TemplateRenderer] | None:
    """`campaigns preview NAME` from the stored current version; None as stored_reports."""
    from campaigns import content_render, content_store
    from core.errors import NotFound

    if name.endswith(".toml"):
        return None
    with stored_session(settings) as session:
        if session is None:
            return None
        try:
            version = content_store.current_version(session, name)
        except NotFound:
            return None
        _say(f"· {name}: stored version {version.number} ({version.author})")
        renderer = content_render.renderer_for(session, version)
        return content_store.sequence_of(version), renderer
