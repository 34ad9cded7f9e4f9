"""`nurture db`: migrations."""

from __future__ import annotations

import typer

from core.settings import load_settings
from nurture.app import NurtureApp
from nurture.cli.common import console
from storage.db import upgrade as upgrade_database

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply Alembic migrations up to REVISION (default: the newest)."""
    nurture = NurtureApp(settings=load_settings())
    upgrade_database(
        nurture.settings.database.url, revision, suppression_hasher=nurture.suppression_hasher
    )
    console.print(f"[green]Database is at {revision}[/green]")
