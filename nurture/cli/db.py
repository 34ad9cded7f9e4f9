"""`nurture db`: migrations, backups and restores."""

from __future__ import annotations

from pathlib import Path

import typer

from core.settings import load_settings
from nurture.app import NurtureApp
from nurture.cli.common import console
from storage.db import upgrade as upgrade_database

app = typer.Typer(help="Database schema, backups and restores.", no_args_is_help=True)


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply Alembic migrations up to REVISION (default: the newest)."""
    nurture = NurtureApp(settings=load_settings())
    upgrade_database(
        nurture.settings.database.url, revision, suppression_hasher=nurture.suppression_hasher
    )
    console.print(f"[green]Database is at {revision}[/green]")
    if revision == "head" and (seeded := nurture.seed_content()):
        console.print(f"Seeded {seeded} sequence(s) from the content folder, as version 1")


@app.command()
def backup(
    file: Path = typer.Argument(..., help="The backup file to create (new, private to you)."),
) -> None:
    """Copy the database into FILE while it runs (SQLite); for PostgreSQL, print pg_dump's
    command."""
    from nurture import backup as backups

    settings = load_settings()
    postgres = backups.postgres_url(settings)
    if postgres is not None:
        console.print("PostgreSQL has its own consistent backup, pg_dump:")
        _say(backups.pg_dump_command(postgres, file))
        raise backups.UsePostgresTools("no backup made here: run the pg_dump command above")
    copied = backups.backup(settings, file)
    _say(f"backed up {copied.database} to {copied.file} ({copied.size:,} bytes, private to you)")
    _say(backups.secret_key_note(settings, copied.database))


@app.command()
def restore(
    file: Path = typer.Argument(..., help="A backup made by `nurture db backup`."),
) -> None:
    """Restore FILE into the configured database, which must be empty (no contacts or
    campaigns); stop the worker and web server first."""
    from nurture import backup as backups

    settings = load_settings()
    postgres = backups.postgres_url(settings)
    if postgres is not None:
        console.print("PostgreSQL: restore a pg_dump file into an empty database with pg_restore:")
        _say(backups.pg_restore_command(postgres, file))
        raise backups.UsePostgresTools("nothing restored here: run the pg_restore command above")
    copied = backups.restore(settings, file)
    _say(f"restored {copied.file} into {copied.database}")
    _say(backups.secret_key_note(settings, copied.database))


def _say(line: str) -> None:
    """A line as it is: paths and commands are never wrapped or read as markup."""
    console.print(line, markup=False, highlight=False, soft_wrap=True)
