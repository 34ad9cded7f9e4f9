"""Database engine, sessions and migrations (SQLite with WAL by default, PostgreSQL by URL)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from core.errors import ConfigError
from core.suppression_hash import HASHER_KEY, SuppressionHasher

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def normalise_url(url: str) -> str:
    """Accept postgresql:// and postgres:// as psycopg 3 URLs; make SQLite folders exist."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a terse message
        raise ConfigError(f"setting database.url: not a database URL: {url!r}") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername.startswith("sqlite") and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return parsed.render_as_string(hide_password=False)


def is_sqlite(bind: Engine | Connection) -> bool:
    return bind.dialect.name == "sqlite"


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; take control so that
        # BEGIN IMMEDIATE gives the dispatcher its single writer (see scheduler.claims).
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # WAL checkpoints: SQLite's own, run by the commit that takes the WAL past 1000 pages
    # (its default, spelled out); no checkpointing of our own.
    cursor.execute("PRAGMA wal_autocheckpoint=1000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    record.info["synchronous"] = "NORMAL"  # what _sqlite_begin compares against
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    options = connection.get_execution_options()
    # Durability per transaction: NORMAL (WAL) survives a crash of the process; a transaction
    # that must also survive a power cut before it is acknowledged (an RFC 8058 one-click
    # unsubscribe) asks for FULL, which fsyncs the WAL at its commit. SQLite refuses to change
    # the level inside a transaction, so it is set here, before BEGIN, and only when it changes.
    synchronous = options.get("sqlite_synchronous", "NORMAL")
    info = connection.connection.info
    if info.get("synchronous", "NORMAL") != synchronous:
        connection.exec_driver_sql(f"PRAGMA synchronous={synchronous}")
        info["synchronous"] = synchronous
    connection.exec_driver_sql(f"BEGIN {options.get('sqlite_begin', 'DEFERRED')}")


_TURN_LOCKS: dict[str, tuple[threading.Lock, int]] = {}
_TURN_LOCKS_GUARD = threading.Lock()


@contextmanager
def writer_turn(engine: Engine) -> Iterator[None]:
    """Wait for this process's turn to write a SQLite database, in a queue shared by processes.

    Two processes' group-commit writers (`nurture web --workers 2`) both want SQLite's one write
    lock, one fsync-long transaction after another. A writer refused by SQLite sleeps in its busy
    handler in growing steps (1, 2, 5 ... 100 ms) and retries blindly, so the other process,
    back within a few ms, wins again and again: one-click unsubscribes waited up to seconds
    (p99 400 ms, wrk timeouts). Writers that take their turn here first wait instead in the
    kernel, on an exclusive `flock` of `<database>-writers.lock`, and are woken the moment the
    holder's commit is done (POSIX advisory lock; released by the kernel if a process dies).
    Hold it around a whole transaction (BEGIN IMMEDIATE ... COMMIT); SQLite's own lock and busy
    timeout still rule every writer that does not take a turn. Elsewhere (PostgreSQL, an
    in-memory database, a platform without fcntl) it does nothing.
    """
    path = engine.url.database if is_sqlite(engine) else None
    try:
        import fcntl
    except ImportError:  # pragma: no cover  (Windows)
        path = None
    if not path or path == ":memory:" or path.startswith("file:"):
        yield
        return
    lock_path = f"{os.path.abspath(path)}-writers.lock"
    with _TURN_LOCKS_GUARD:
        if lock_path not in _TURN_LOCKS:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            _TURN_LOCKS[lock_path] = (threading.Lock(), fd)
        in_process, fd = _TURN_LOCKS[lock_path]
    # flock excludes other open files, not other threads sharing this one: a thread lock first.
    with in_process:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


def session_factory(
    engine: Engine, suppression_hasher: SuppressionHasher | None = None
) -> sessionmaker[Session]:
    """Sessions that carry the suppression hasher (in Session.info), so every suppression
    lookup of this install uses its own key (contacts.suppressions.hasher_of reads it)."""
    info = {HASHER_KEY: suppression_hasher} if suppression_hasher is not None else {}
    return sessionmaker(engine, expire_on_commit=False, info=info)


@contextmanager
def transaction(factory: sessionmaker[Session], *, immediate: bool = True) -> Iterator[Session]:
    """A session in one transaction, committed on success.

    On SQLite a transaction that reads and then writes must take the write lock up front
    (BEGIN IMMEDIATE): a deferred one that tries to upgrade after another writer committed fails
    at once with "database is locked" (SQLITE_BUSY_SNAPSHOT), whatever the busy timeout. Pass
    immediate=False for read-only work.
    """
    session = factory()
    try:
        if immediate and is_sqlite(session.get_bind()):
            session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str, suppression_hasher: SuppressionHasher | None = None) -> Config:
    """The one place migrations get the suppression hasher (migration 0005 re-keys stored
    hashes with it, and refuses to run on suppressions without it)."""
    from alembic.config import Config  # imported on use: alembic and mako cost a process 10 MB

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    if suppression_hasher is not None:
        config.attributes[HASHER_KEY] = suppression_hasher
    return config


def upgrade(
    url: str, revision: str = "head", *, suppression_hasher: SuppressionHasher | None = None
) -> None:
    from alembic import command

    command.upgrade(alembic_config(url, suppression_hasher), revision)


def head_revision() -> str:
    """The newest migration's id, as Alembic's own ScriptDirectory reads it."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    if len(heads) != 1:
        raise ConfigError(f"the migrations have {len(heads)} heads: {sorted(heads)}")
    return heads[0]


def current_revision(engine: Engine) -> str | None:
    if not has_schema(engine):
        return None
    with engine.connect() as connection:
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def ensure_schema(engine: Engine, suppression_hasher: SuppressionHasher | None = None) -> None:
    """Upgrade the database to the newest migration (first run of the embedded default)."""
    if current_revision(engine) == head_revision():
        return
    from alembic import command

    config = alembic_config(engine.url.render_as_string(hide_password=False), suppression_hasher)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def has_schema(engine: Engine) -> bool:
    return inspect(engine).has_table("alembic_version")
