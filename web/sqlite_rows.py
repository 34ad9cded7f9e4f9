"""The group-commit writers' SQL for SQLite, through the driver directly.

SQLAlchemy Core spends ~10 µs per row per statement building parameters and running type
processors; at thousands of clicks and unsubscribes a second, that was most of the writers' time,
and the writer thread shares the GIL with the request loop. On SQLite the writers therefore send
plain SQL with `executemany`, storing values exactly as SQLAlchemy does (naive-UTC
`YYYY-MM-DD HH:MM:SS.ffffff` for times, json.dumps for JSON). tests/web/test_unsubscribe.py holds
this path and `contacts.optout.opt_out` to the same rows; PostgreSQL keeps the Core path.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection

CLICK_INSERT = (
    "INSERT INTO events (kind, occurred_at, message_id, contact_id, campaign_id, step_index,"
    " channel, user_agent, data) VALUES "
)
CLICK_ROW = "('clicked', ?, ?, ?, ?, ?, ?, ?, ?)"
# Clicks a statement: few enough that building one chunk's parameters holds the GIL ~0.1 ms
# (200 measured ~1,000 clicks/s slower: the request loop waited for the GIL after its reads).
ROWS_PER_STATEMENT = 50
SUPPRESS_SQL = (
    "INSERT INTO suppressions (channel, address_hash, address, reason, source, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (channel, address_hash) DO UPDATE SET"
    " reason = excluded.reason, source = excluded.source, created_at = excluded.created_at,"
    " lifted_at = NULL, lifted_by = NULL WHERE suppressions.lifted_at IS NOT NULL"
)
CONSENT_SQL = (
    "INSERT INTO consent_events (contact_id, channel, status, occurred_at, source, evidence,"
    " recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
EVENT_SQL = (
    "INSERT INTO events (kind, occurred_at, contact_id, channel, data)"
    " VALUES ('unsubscribed', ?, ?, ?, ?)"
)


@lru_cache(maxsize=4096)
def stored_time(moment: datetime) -> str:
    """What SQLAlchemy's UTCDateTime stores on SQLite for this aware time (a batch's rows
    mostly share a few instants, hence the cache)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def driver(connection: Connection) -> Any:
    return connection.connection.dbapi_connection


class WriterConnection:
    """A group-commit writer's own driver connection, kept for the life of the writer.

    A pooled connection's page cache is small (2 MB) and is thrown away whenever another
    connection commits, so each batch read its index pages again with a system call apiece, and
    the foreign-key checks read random pages of the million-row contacts and messages tables.
    The writer's own connection keeps its index pages cached between its batches, and maps the
    database file into memory (`MessageReader`) for the rest. Settings otherwise as
    nurture.db's (WAL, foreign keys on, a 30 s busy timeout), plus the writer's durability:
    synchronous=FULL for unsubscribes (a commit survives a power cut), NORMAL for clicks.
    """

    CACHE_KIB = 65536

    def __init__(self, database: str, *, synchronous: str) -> None:
        self.database, self.synchronous = database, synchronous
        self.quiet_checkpoints = False  # set while a Checkpointer runs
        self._connection: sqlite3.Connection | None = None
        self._quiet: bool | None = None
        self._lock = threading.Lock()  # outside a lifespan, request threads write directly

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT on the writer's connection (ROLLBACK on an error)."""
        with self._lock:
            raw = self._open()
            if self._quiet is not self.quiet_checkpoints:
                quiet_autocheckpoint(raw, self.quiet_checkpoints)
                self._quiet = self.quiet_checkpoints
            raw.execute("BEGIN IMMEDIATE")
            try:
                yield raw
            except BaseException:
                raw.execute("ROLLBACK")
                raise
            raw.execute("COMMIT")

    def _open(self) -> sqlite3.Connection:
        if self._connection is None:
            raw = sqlite3.connect(
                self.database, isolation_level=None, timeout=30, check_same_thread=False
            )
            for pragma in (
                "journal_mode=WAL",
                f"synchronous={self.synchronous}",
                "foreign_keys=ON",
                "busy_timeout=30000",
                f"cache_size=-{self.CACHE_KIB}",
                f"mmap_size={MessageReader.MMAP_BYTES}",
            ):
                raw.execute(f"PRAGMA {pragma}").fetchall()
            self._connection, self._quiet = raw, None
        return self._connection

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


def insert_clicks(raw: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> None:
    """rows: (occurred_at, message_id, contact_id, campaign_id, step_index, channel, user_agent,
    destination), web.links.Click's order."""
    # One multi-row INSERT per chunk rather than executemany: executemany gives up and takes
    # back the GIL around every row, and under load each hand-over can wait for the request
    # loop's switch interval, stretching the batch and the loop's latency alike. Each chunk's
    # parameters are built just before it runs, so the writer holds the GIL for one chunk's
    # worth of Python at a time (well under a millisecond), not a whole batch's: the request
    # loop, waiting for the GIL after each of its own SQLite reads, waits that long at most.
    data = _destination_json
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        values: list[Any] = []
        for row in chunk:
            values += (click_time(row[0]), *row[1:7], data(row[7]))
        raw.execute(CLICK_INSERT + ", ".join([CLICK_ROW] * len(chunk)), values)


def click_time(moment: datetime) -> str:
    """stored_time without its cache: every click has its own microsecond."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(" ", "microseconds")


@lru_cache(maxsize=256)
def _destination_json(destination: str) -> str:
    return json.dumps({"destination": destination})


def contact_rows(raw: sqlite3.Connection, ids: Sequence[int]) -> list[tuple[Any, ...]]:
    marks = ", ".join("?" * len(ids))
    cursor = raw.execute(
        f"SELECT id, email, phone, email_consent, sms_consent FROM contacts WHERE id IN ({marks})",
        list(ids),
    )
    return list(cursor.fetchall())


def write_unsubscribes(
    raw: sqlite3.Connection,
    suppressions: list[dict[str, Any]],
    consents: list[dict[str, Any]],
    consent_columns: list[tuple[str, int, datetime]],
    events: list[dict[str, Any]],
) -> None:
    raw.executemany(
        SUPPRESS_SQL,
        [
            (
                s["channel"],
                s["address_hash"],
                s["address"],
                s["reason"],
                s["source"],
                stored_time(s["created_at"]),
            )
            for s in suppressions
        ],
    )
    raw.executemany(
        CONSENT_SQL,
        [
            (
                c["contact_id"],
                c["channel"],
                c["status"],
                stored_time(c["occurred_at"]),
                c["source"],
                c["evidence"],
                stored_time(c["recorded_at"]),
            )
            for c in consents
        ],
    )
    for channel in ("email", "sms"):
        updates = [(stored_time(at), cid) for ch, cid, at in consent_columns if ch == channel]
        if updates:
            raw.executemany(
                f"UPDATE contacts SET {channel}_consent = 'opted_out', updated_at = ? WHERE id = ?",
                updates,
            )
    raw.executemany(
        EVENT_SQL,
        [
            (stored_time(e["occurred_at"]), e["contact_id"], e["channel"], json.dumps(e["data"]))
            for e in events
        ],
    )


class MessageReader:
    """One read-only driver connection for the click path's single-row lookup (~10 µs instead of
    a pool checkout and a Core execution). WAL lets it read while the writers commit.

    The database file is memory-mapped (SQLite's mmap_size; pages still in the WAL are read from
    there as usual), so a lookup costs no read() system calls: half the time of one through
    SQLite's small page cache, on a table of a million messages looked up at random."""

    MMAP_BYTES = 1 << 34  # SQLite caps it at its compile-time maximum (2 GB by default)

    SQL = "SELECT contact_id, campaign_id, step_index, channel FROM messages WHERE id = ?"

    def __init__(self, database: str) -> None:
        self.database = database
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def get(self, message_id: int) -> tuple[int, int, int, str] | None:
        with self._lock:
            if self._connection is None:
                self._connection = sqlite3.connect(
                    self.database, check_same_thread=False, isolation_level=None, timeout=30
                )
                self._connection.execute("PRAGMA query_only = ON")
                self._connection.execute(f"PRAGMA mmap_size = {self.MMAP_BYTES}")
            row = self._connection.execute(self.SQL, (message_id,)).fetchone()
        return None if row is None else (row[0], row[1], row[2], row[3])

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


class Checkpointer:
    """Copies the WAL back into the database outside the writers' commits.

    SQLite's automatic checkpoint runs inside whichever commit crosses 1000 WAL pages, so one
    unlucky unsubscribe in a flood waited for a whole checkpoint. The group-commit writers turn
    theirs off (`quiet_autocheckpoint`) and call `after_commit` once a batch's requests have
    been answered.

    A checkpoint writes the batch's pages to their random places in the database file and
    fsyncs it: on the bench's disk that took longer than the commit's own sequential WAL write
    (py-spy: 41% of the unsubscribe writer's time against 34% for COMMIT). Run in the writer's
    thread after every batch (as before), the next batch could not begin until it was done. So
    `after_commit` hands it to this class's thread, which copies the pages (a PASSIVE checkpoint
    never blocks the writers) while the writer commits its next batch: the disk serves both.

    But SQLite starts the WAL over from its beginning only when a transaction begins on a WAL
    that is fully copied, which a checkpoint running beside the commits rarely leaves; the WAL
    then grew by every page written (800 MB in an 8-second flood of unsubscribes), each new
    page costing the file system a block allocation and the commit's fsync a journal commit.
    Hence `restart_frames`: once the WAL holds that many frames, the writer checkpoints itself,
    between two of its transactions (copying only what the thread has not yet), so its next
    transaction starts the WAL over. The thread also checkpoints a few times a second, for
    writes from elsewhere (the sqlite3 module releases the GIL meanwhile).
    """

    RESTART_FRAMES = 4000  # 16 MB of WAL with 4 KiB pages

    def __init__(
        self, database: str, interval: float = 0.25, restart_frames: int = RESTART_FRAMES
    ) -> None:
        self.database, self.interval, self.restart_frames = database, interval, restart_frames
        self._stop = threading.Event()
        self._due = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self.wal_frames = 0  # the WAL's length at the last checkpoint (0: it starts over)
        self.restarts = 0  # checkpoints run in a writer's thread to start the WAL over

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            self._due.set()
            thread.join(30)
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def after_commit(self) -> None:
        """A writer's hook, in its thread between two of its transactions."""
        if self.wal_frames >= self.restart_frames or self._thread is None:
            self.checkpoint(wait=True)
            self.wal_frames = 0
            self.restarts += 1
        else:
            self._due.set()

    def checkpoint(self, *, wait: bool = True) -> None:
        if not self._lock.acquire(blocking=wait):
            return
        try:
            if self._connection is None:
                self._connection = sqlite3.connect(
                    self.database, isolation_level=None, timeout=30, check_same_thread=False
                )
            row = self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.wal_frames = row[1]  # (busy, frames in the WAL, frames copied)
        finally:
            self._lock.release()

    def _run(self) -> None:
        self.checkpoint()  # the first one may have a long fsync to do: not in a writer's way
        while not self._stop.is_set():
            self._due.wait(self.interval)
            self._due.clear()
            self.checkpoint()
        self.checkpoint()


def quiet_autocheckpoint(raw: Any, on: bool) -> None:
    """Writers switch SQLite's in-commit checkpoint off while the Checkpointer runs."""
    raw.execute(f"PRAGMA wal_autocheckpoint={0 if on else 1000}")
