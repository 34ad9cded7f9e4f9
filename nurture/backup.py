"""Backups of the embedded SQLite database, and restores into an empty one.

SQLite: the online backup API (`sqlite3.Connection.backup`) copies a consistent snapshot page by
page while the worker and web server keep writing; copying the file instead can catch a write
half done, and misses what is still in the WAL file. PostgreSQL has its own tool for this
(`pg_dump`), so for it we print the exact command instead of imitating it.

A backup holds every contact's name, address and consent record, so it is created private to its
owner (0600) and never over an existing file. A restore goes only into an empty database: one
that has contacts or campaigns is somebody's live data and is refused, whatever the backup holds.

What a backup does not hold is the secret key: it signs every link in every message sent and keys
the suppression list's hashes (core.suppression_hash), so a database restored without its key
has dead links and a suppression list that no longer matches. The commands say where it is.
"""

from __future__ import annotations

import os
import shlex
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from core.errors import ConfigError, InputError, NotFound, NurtureError
from core.settings import Settings

PRIVATE_FILE = 0o600
#: Tables whose rows make a database somebody's data, not an empty one to restore into.
LIVE_DATA_TABLES = ("contacts", "campaigns")


class UsePostgresTools(NurtureError):
    """The database is PostgreSQL: pg_dump and pg_restore do this (the command is printed)."""

    exit_code = 64  # EX_USAGE: this command does not back up this kind of database


@dataclass(frozen=True)
class Copied:
    database: Path
    file: Path
    size: int


def postgres_url(settings: Settings) -> URL | None:
    """The configured URL when it is PostgreSQL, for the printed pg_dump / pg_restore command."""
    url = make_url(settings.database.url)
    return url if url.drivername.startswith("postgresql") else None


def pg_dump_command(url: URL, file: Path) -> str:
    """pg_dump's custom format into a private file; the password is left out (pg_dump reads
    PGPASSWORD or ~/.pgpass), so the line can be shown and pasted."""
    return f"(umask 077 && pg_dump --format=custom --file={shlex.quote(str(file))} {_dbname(url)})"


def pg_restore_command(url: URL, file: Path) -> str:
    return f"pg_restore --no-owner {_dbname(url)} {shlex.quote(str(file))}"


def _dbname(url: URL) -> str:
    plain = URL.create(
        "postgresql",
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
        query=url.query,
    )
    return "--dbname=" + shlex.quote(plain.render_as_string(hide_password=False))


def sqlite_database(settings: Settings) -> Path:
    url = make_url(settings.database.url)
    if not url.drivername.startswith("sqlite") or not url.database or url.database == ":memory:":
        raise ConfigError(
            "NURTURE_DATABASE__URL: backups are for a SQLite file or PostgreSQL, "
            f"not {url.drivername} {url.database or ''}".rstrip()
        )
    return Path(url.database)


def secret_key_note(settings: Settings, database: Path) -> str:
    where = (
        "the NURTURE_SECRET_KEY environment variable"
        if settings.secrets.secret_key
        else str(database.parent / "secret_key")
    )
    return (
        f"keep the secret key with it ({where}): links and the suppression list's hashes "
        "depend on it"
    )


def backup(settings: Settings, file: Path) -> Copied:
    """A consistent copy of the SQLite database in a new private file."""
    database = sqlite_database(settings)
    if not database.is_file():
        raise NotFound(f"no database at {database} to back up")
    _create_private(file)  # FileExistsError (an OSError) if it exists: never overwrite
    try:
        with closing(_open_read_only(database)) as source, closing(sqlite3.connect(file)) as copy:
            source.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal
    except BaseException:
        file.unlink(missing_ok=True)  # no half-written backup left to trust
        raise
    return Copied(database, file, file.stat().st_size)


def restore(settings: Settings, file: Path) -> Copied:
    """The backup in `file` becomes the database, which must be empty (or not exist yet)."""
    database = sqlite_database(settings)
    if not file.is_file():
        raise NotFound(f"no backup at {file}")
    with closing(_open_read_only(file)) as source:
        _check_is_a_backup(source, file)
        if database.exists():
            _refuse_live_data(database)
        else:
            database.parent.mkdir(parents=True, exist_ok=True)
            _create_private(database)
        with closing(sqlite3.connect(database)) as target:
            source.backup(target)
    return Copied(database, file, database.stat().st_size)


def _create_private(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))


def _open_read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)


def _check_is_a_backup(source: sqlite3.Connection, file: Path) -> None:
    try:
        tables = {row[0] for row in source.execute("SELECT name FROM sqlite_master")}
        healthy = source.execute("PRAGMA quick_check").fetchone() == ("ok",)
    except sqlite3.DatabaseError:  # not an SQLite file at all ("file is not a database")
        tables, healthy = set(), False
    if not healthy or not {"alembic_version", *LIVE_DATA_TABLES} <= tables:
        raise InputError(f"{file} is not a Nurture database backup")


def _refuse_live_data(database: Path) -> None:
    with closing(_open_read_only(database)) as target:
        try:
            tables = {row[0] for row in target.execute("SELECT name FROM sqlite_master")}
            filled = [
                table
                for table in LIVE_DATA_TABLES
                if table in tables and target.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()
            ]
        except sqlite3.DatabaseError:  # "file is not a database": not ours to overwrite either
            filled = ["something that is not an SQLite database"]
    if filled:
        raise InputError(
            f"the database at {database} has {' and '.join(filled)}; restore only into an "
            "empty database (move this one aside, or point NURTURE_DATABASE__URL elsewhere)"
        )
