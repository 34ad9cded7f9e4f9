"""CSV import of contacts: check the whole file, then stream it in batches, using every core.

The parent process writes batches; worker processes read, check and normalise spans of the file
(contacts.csvsource.Span: byte ranges of whole records, found by the whole-file check), so the
rows never pass through the parent, whose one core is the import's bottleneck. At most a few
spans are in flight, so memory stays bounded however large the file. Results come back in file
order, so "the first value wins" (contacts.merge) means the same thing on one core or many.

Every batch commits on its own: a crash half-way leaves a consistent database, and re-running
the same import finishes the job, since re-importing changes nothing that is already there.

Where the time goes (bench/import_contacts.py, 1M rows, 2 cores, SQLite, ~28 s): the parent
spends ~25 s of CPU, three quarters of it inside SQLite inserting into the email and phone
indexes (contacts.writer); workers ~26 s, mostly phonenumbers and email-validator
(contacts.normalize). The parent is the critical path, so workers run at a lower priority.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO

from sqlalchemy.orm import Session, sessionmaker

from contacts.columns import ColumnMapping, plan_columns
from contacts.csvsource import CsvFile, Span, guess_encoding, inspect_csv
from contacts.rows import CleanRow, Rejected, RowRules, clean_rows, warm_up
from contacts.suppressions import hasher_of
from contacts.writer import ANY_SUPPRESSION_SQL, BatchWriter
from core.clock import Clock, utcnow
from core.csv_safety import SafeCsvWriter, csv_writer
from core.errors import InputError
from core.suppression_hash import SuppressionHasher
from storage.db import transaction

log = logging.getLogger("nurture.contacts.import")

CHUNK_ROWS = 2000
#: Rows written per transaction: fewer commits (each may run a WAL checkpoint) and fewer
#: statements, while a batch's rows stay a few megabytes.
WRITE_ROWS = 10_000
#: Rows handed to workers and not yet written: about the next batch, so workers keep checking
#: while the writer writes (with a few chunks in flight, they sat idle during each write and
#: the writer then waited for them in turn).
IN_FLIGHT_ROWS = 2 * WRITE_ROWS
WORKER_NICENESS = 5  # see _init_worker
#: Below this many rows, starting worker processes costs more than it saves.
PARALLEL_FROM = 20_000


@dataclass
class ImportSummary:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    suppressions_kept: int = 0  # rows naming a suppressed address, which stayed suppressed
    sms_without_evidence: int = 0  # rows saying "yes" to texts without written-consent evidence
    consent_kept: int = 0  # opt-ins an earlier opt-out or a suppression outranked
    total_rows: int = 0
    rejects_path: Path | None = None
    custom_fields: list[str] = field(default_factory=list)
    columns: list[tuple[str, str]] = field(default_factory=list)

    @property
    def processed(self) -> int:
        return self.inserted + self.updated + self.unchanged + self.rejected

    def counts(self) -> dict[str, int]:
        names = (
            "inserted",
            "updated",
            "unchanged",
            "rejected",
            "suppressions_kept",
            "sms_without_evidence",
            "consent_kept",
        )
        return {name: getattr(self, name) for name in names}


def import_csv(
    sessions: sessionmaker[Session],
    path: Path,
    source: str,
    *,
    default_timezone: str,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[ImportSummary], None] | None = None,
    mapping: ColumnMapping | None = None,
    partial: bool = False,
    encoding: str | None = None,
    workers: int | None = None,
    clock: Clock = utcnow,
) -> ImportSummary:
    """Import a CSV; returns the counts. InputError (nothing written) for a whole-file problem.

    `progress(n)` is called as each n rows are done; `on_start(summary)` once the file has been
    checked (summary.total_rows and .columns are known). `workers` None picks both cores for
    large files; 0 checks rows in this process.
    """
    source = source.strip()
    if not source or len(source) > 80:
        raise InputError("--source must name where the contacts came from in at most 80 "
                         "characters (e.g. website-form)")  # fmt: skip
    checked = inspect_csv(path, encoding, span_rows=CHUNK_ROWS)
    if checked.first_bad_line is not None and not partial:
        guess = guess_encoding(path)
        hint = f"; it looks like {guess}: pass --encoding {guess}" if guess else ""
        raise InputError(
            f"{path.name}: line {checked.first_bad_line} is not valid {checked.encoding}{hint}, "
            "re-save it as UTF-8, or pass --partial to import the rest and reject those lines"
        )
    plan = plan_columns(checked.header, mapping)
    now = clock()
    summary = ImportSummary(
        total_rows=checked.total_rows,
        custom_fields=sorted(plan.custom),
        columns=plan.describe(),
    )
    if on_start:
        on_start(summary)
    rules = RowRules(
        plan,
        default_timezone,
        now,
        check_encoding=checked.first_bad_line is not None,
        hasher=_hasher_if_any_suppression(sessions),
    )
    writer = BatchWriter(sessions, source, path.name, default_timezone, now)
    rejects = RejectsFile(path.with_name(f"{path.stem}.rejects.csv"), checked)
    if workers is None:
        workers = min(os.cpu_count() or 1, 4) if checked.total_rows >= PARALLEL_FROM else 0
    try:
        for batch in _write_batches(_checked_chunks(checked, rules, workers)):
            _write_batch(writer, checked, batch, summary, rejects)
            if progress:
                progress(sum(len(part.results) for part in batch))
    finally:
        rejects.close()
        writer.finish()
    summary.rejects_path = rejects.path if summary.rejected else None
    log.info(
        "imported %s from %s: %d inserted, %d updated, %d unchanged, %d rejected, "
        "%d suppressions kept",
        path.name,
        source,
        summary.inserted,
        summary.updated,
        summary.unchanged,
        summary.rejected,
        summary.suppressions_kept,
    )
    return summary


def _hasher_if_any_suppression(sessions: sessionmaker[Session]) -> SuppressionHasher | None:
    """The suppression hasher for the workers, or None when the list is empty (nothing to
    look up, so the rows need no hashes)."""
    with transaction(sessions, immediate=False) as session:
        if session.connection().exec_driver_sql(ANY_SUPPRESSION_SQL).first() is None:
            return None
        return hasher_of(session)


Chunk = list[tuple[int, list[str]]]
Results = list[CleanRow | Rejected]


@dataclass
class Checked:
    """A chunk's results, and where its rows came from (to copy a row into the rejects file)."""

    results: Results
    rows: Chunk | Span


def _write_batches(checked: Iterator[Checked]) -> Iterator[list[Checked]]:
    """Consecutive checked chunks joined into batches of about WRITE_ROWS, in file order."""
    batch: list[Checked] = []
    size = 0
    for part in checked:
        batch.append(part)
        size += len(part.results)
        if size >= WRITE_ROWS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _checked_chunks(checked: CsvFile, rules: RowRules, workers: int) -> Iterator[Checked]:
    if workers == 0:
        records = checked.records()
        for chunk in iter(lambda: list(islice(records, CHUNK_ROWS)), []):
            yield Checked(clean_rows(rules, chunk), chunk)
        return
    method = _start_method()
    if method == "fork":
        # Load what validation needs (phone metadata, IDNA tables) before forking, and move
        # every object out of the collector's reach, so workers share these pages instead of
        # each copying them (gc.freeze: https://docs.python.org/3/library/gc.html#gc.freeze).
        warm_up()
        gc.freeze()
    context = multiprocessing.get_context(method)
    try:
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=_init_worker, initargs=(rules, checked)
        ) as pool:
            pending: deque[tuple[Chunk | Span, Future[Results]]] = deque()
            for rows in _work(checked):
                if isinstance(rows, Span):
                    future = pool.submit(_check_span, rows)
                else:
                    future = pool.submit(_check_chunk, rows)
                pending.append((rows, future))
                if len(pending) > IN_FLIGHT_ROWS // CHUNK_ROWS + workers:
                    done, future = pending.popleft()
                    yield Checked(future.result(), done)
            while pending:
                done, future = pending.popleft()
                yield Checked(future.result(), done)
    finally:
        gc.unfreeze()  # a long-running caller (the web dashboard) collects its garbage again


def _work(checked: CsvFile) -> Iterator[Chunk | Span]:
    """Spans for the workers to read themselves, or (a file that cannot be cut by bytes) the
    rows, read here."""
    if checked.spans is not None:
        yield from checked.spans
        return
    records = checked.records()
    yield from iter(lambda: list(islice(records, CHUNK_ROWS)), [])


def _start_method() -> str:
    """fork where there is one: workers then share the parent's loaded code and phone metadata
    instead of each importing the whole app (spawn costs ~80 MB and a second per worker). They
    only run contacts.rows, never the inherited database connections, logging or threads, and
    leave through os._exit, so nothing inherited is closed twice."""
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


_worker_rules: RowRules | None = None
_worker_file: CsvFile | None = None


def _init_worker(rules: RowRules, checked: CsvFile) -> None:
    global _worker_rules, _worker_file
    _worker_rules, _worker_file = rules, checked
    if hasattr(os, "nice"):
        # The writing process is the import's critical path: with as many workers as cores,
        # the scheduler gave it only two thirds of a core. Lower-priority workers take the
        # CPU it leaves (and yield to the web server and scheduler too).
        os.nice(WORKER_NICENESS)


def _check_chunk(chunk: Chunk) -> Results:
    assert _worker_rules is not None
    return clean_rows(_worker_rules, chunk)


def _check_span(span: Span) -> Results:
    assert _worker_rules is not None and _worker_file is not None
    return clean_rows(_worker_rules, list(_worker_file.read_span(span)))


def _write_batch(
    writer: BatchWriter,
    checked: CsvFile,
    batch: list[Checked],
    summary: ImportSummary,
    rejects: RejectsFile,
) -> None:
    clean: list[CleanRow] = []
    for part in batch:
        for result in part.results:
            if isinstance(result, CleanRow):
                clean.append(result)
            else:
                rejects.add(result.line, result.reason, result.values)
                summary.rejected += 1
    summary.sms_without_evidence += sum(r.sms_without_evidence for r in clean)
    raw: dict[int, list[str]] | None = None
    for outcome in writer.write(clean) if clean else []:
        if outcome.outcome == "rejected":
            if raw is None:  # rare (a row naming two contacts): read the batch's rows again
                raw = {}
                for part in batch:
                    rows = part.rows
                    raw.update(checked.read_span(rows) if isinstance(rows, Span) else rows)
            rejects.add(outcome.line, outcome.reason, raw[outcome.line])
        setattr(summary, outcome.outcome, getattr(summary, outcome.outcome) + 1)
        summary.suppressions_kept += outcome.suppressions_kept
        summary.consent_kept += outcome.consent_kept


class RejectsFile:
    """`<name>.rejects.csv` beside the input: line, reason, then the row as it was.

    Staff download it, fix the rows in a spreadsheet and import it again, so its cells are
    formula-safe (core.csv_safety.escape_cell, OWASP CSV injection) and the importer reads an
    escaped cell back as the original value (contacts.csvsource applies read_back).
    """

    def __init__(self, path: Path, checked: CsvFile) -> None:
        self.path = path
        self.header = checked.header
        self._handle: IO[str] | None = None
        self._writer: SafeCsvWriter | None = None
        path.unlink(missing_ok=True)  # a stale file from an earlier run would mislead

    def add(self, line: int, reason: str, values: list[str]) -> None:
        if self._writer is None:
            self._handle = self.path.open("w", newline="", encoding="utf-8", errors="replace")
            self._writer = csv_writer(self._handle)
            self._writer.writerow(["line", "reason", *self.header])
        safe = [v.encode("utf-8", "surrogateescape").decode("utf-8", "replace") for v in values]
        self._writer.writerow([line, reason, *safe])

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
