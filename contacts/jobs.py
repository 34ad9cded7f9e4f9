"""An import recorded in the `imports` table (ImportJob), so staff can watch it from the dashboard.

Usage from a web handler (the upload has been saved to `path`; the job deletes it when it ends,
see contacts.import_files for why)::

    job_id = start_import_job(sessions, path, source)      # returns at once
    thread = threading.Thread(target=run_import_job, args=(sessions, job_id, path, source),
                              kwargs={"default_timezone": zone}, daemon=True)
    thread.start()

and poll `ImportJob` (status running|finished|failed, processed_rows/total_rows, counts,
rejects_path, error). Progress is written in its own short transactions at most twice a second,
never inside the import's batches, so a reader sees it while the import runs.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from contacts.columns import ColumnMapping
from contacts.importer import ImportSummary, import_csv
from core.clock import Clock, utcnow
from core.errors import NotFound, NurtureError
from storage.db import transaction
from storage.models import ImportJob

log = logging.getLogger("nurture.contacts.jobs")

RUNNING, FINISHED, FAILED = "running", "finished", "failed"
PROGRESS_EVERY_SECONDS = 0.5


def start_import_job(
    sessions: sessionmaker[Session], path: Path, source: str, *, clock: Clock = utcnow
) -> int:
    """Create the ImportJob row (status running) and return its id."""
    with transaction(sessions) as session:
        job = ImportJob(filename=path.name, source=source, status=RUNNING, started_at=clock())
        session.add(job)
        session.flush()
        return job.id


def run_import_job(
    sessions: sessionmaker[Session],
    job_id: int,
    path: Path,
    source: str,
    *,
    default_timezone: str,
    mapping: ColumnMapping | None = None,
    partial: bool = False,
    encoding: str | None = None,
    workers: int | None = None,
    clock: Clock = utcnow,
) -> ImportSummary | None:
    """Run the import for ImportJob `job_id`, keeping its row up to date; bad input is recorded.

    On success: status "finished", counts (inserted, updated, unchanged, rejected,
    suppressions_kept, sms_without_evidence, consent_kept), processed_rows == total_rows and
    rejects_path (or None). On a whole-file problem (encoding, missing columns, empty file):
    status "failed" and `error` holds the one-line message staff should see; nothing was
    imported. Any other exception is recorded the same way and re-raised.

    The upload at `path` is deleted when the job ends, however it ends: its rows are in the
    database or the rejects file by then, and a forgotten person must not stay in a copy of the
    file (CCPA; contacts.import_files).
    """
    if not _exists(sessions, job_id):
        raise NotFound(f"no import job {job_id}")
    progress = _Progress(sessions, job_id)
    try:
        summary = import_csv(
            sessions, path, source, default_timezone=default_timezone, mapping=mapping,
            partial=partial, encoding=encoding, workers=workers, clock=clock,
            progress=progress.advance, on_start=progress.start,
        )  # fmt: skip
    except NurtureError as exc:
        _finish(sessions, job_id, status=FAILED, error=str(exc), finished_at=clock())
        return None
    except BaseException as exc:
        _finish(sessions, job_id, status=FAILED, error=f"import stopped: {exc}",
                finished_at=clock(), processed_rows=progress.done)  # fmt: skip
        raise
    finally:
        path.unlink(missing_ok=True)
    _finish(
        sessions, job_id, status=FINISHED, finished_at=clock(), counts=summary.counts(),
        total_rows=summary.total_rows, processed_rows=summary.processed,
        rejects_path=str(summary.rejects_path) if summary.rejects_path else None,
    )  # fmt: skip
    log.info("import job %d finished: %s", job_id, summary.counts())
    return summary


class _Progress:
    def __init__(self, sessions: sessionmaker[Session], job_id: int) -> None:
        self.sessions, self.job_id = sessions, job_id
        self.done = 0
        self._written_at = 0.0

    def start(self, summary: ImportSummary) -> None:
        _finish(self.sessions, self.job_id, total_rows=summary.total_rows)

    def advance(self, rows: int) -> None:
        self.done += rows
        if time.monotonic() - self._written_at >= PROGRESS_EVERY_SECONDS:
            _finish(self.sessions, self.job_id, processed_rows=self.done)
            self._written_at = time.monotonic()


def _exists(sessions: sessionmaker[Session], job_id: int) -> bool:
    with transaction(sessions, immediate=False) as session:
        return session.get(ImportJob, job_id) is not None


def _finish(sessions: sessionmaker[Session], job_id: int, **values: Any) -> None:
    with transaction(sessions) as session:
        job = session.get(ImportJob, job_id)
        if job is not None:
            for name, value in values.items():
                setattr(job, name, value)
