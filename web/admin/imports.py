"""CSV imports started from the dashboard, run in a background thread, watched by staff.

The ImportJob row is the record (status, counts, rejects file). While a job runs, its progress
also lives in this process's memory: on SQLite the import holds the single write lock for its
whole transaction, so progress cannot be written to the row until it commits. When the contacts
package offers `contacts.jobs.run_import_job`, that records progress itself and is used instead.
"""

from __future__ import annotations

import importlib
import logging
import threading
import uuid
from pathlib import Path
from typing import Any

from contacts.importer import import_csv
from nurture.app import NurtureApp
from nurture.db import transaction
from nurture.models import ImportJob

log = logging.getLogger("nurture.staff.imports")

_progress: dict[int, int] = {}
_lock = threading.Lock()


def imports_dir(nurture: NurtureApp) -> Path:
    """Uploads and rejects files live beside the outbox (var/imports by default)."""
    folder = Path(nurture.settings.outbox.dir).resolve().parent / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def count_rows(path: Path) -> int:
    with path.open("rb") as handle:
        return max(sum(1 for _ in handle) - 1, 0)


def save_upload(nurture: NurtureApp, chunks: list[bytes]) -> Path:
    """A server-chosen name: the uploaded file name is only ever shown, never used as a path."""
    path = imports_dir(nurture) / f"{uuid.uuid4().hex}.csv"
    with path.open("wb") as out:
        for chunk in chunks:
            out.write(chunk)
    return path


def create_job(nurture: NurtureApp, path: Path, filename: str, source: str) -> int:
    with transaction(nurture.sessions) as session:
        job = ImportJob(
            filename=filename[:500],
            source=source[:100],
            status="running",
            total_rows=count_rows(path),
            started_at=nurture.clock(),
        )
        session.add(job)
        session.flush()
        return job.id


def progress_of(job: ImportJob) -> int:
    with _lock:
        return max(_progress.get(job.id, 0), job.processed_rows)


def start(nurture: NurtureApp, job_id: int, path: Path) -> threading.Thread:
    thread = threading.Thread(
        target=run, args=(nurture, job_id, path), name=f"import-{job_id}", daemon=True
    )
    thread.start()
    return thread


def run(nurture: NurtureApp, job_id: int, path: Path) -> None:
    """Run one import to the end, recording the outcome on its row whatever happens."""
    jobs: Any = _contacts_jobs()
    if jobs is not None and hasattr(jobs, "run_import_job"):
        jobs.run_import_job(nurture.sessions, job_id, path)
        return
    with _lock:
        _progress[job_id] = 0

    def advance(rows: int) -> None:
        with _lock:
            _progress[job_id] = _progress.get(job_id, 0) + rows

    with nurture.sessions() as session:
        source = session.get_one(ImportJob, job_id).source
    try:
        summary = import_csv(
            nurture.sessions,
            path,
            source,
            default_timezone=nurture.settings.clinic.default_timezone,
            progress=advance,
        )
    except Exception as exc:  # recorded for staff; the thread must not die silently
        log.warning("import %d failed: %s", job_id, type(exc).__name__)
        _finish(nurture, job_id, status="failed", error=str(exc)[:2000])
        return
    counts = {
        name: getattr(summary, name, 0)
        for name in ("inserted", "updated", "unchanged", "rejected", "suppressions_kept")
        if hasattr(summary, name)
    }
    rejects = getattr(summary, "rejects_path", None)
    _finish(
        nurture,
        job_id,
        status="done",
        counts=counts,
        rejects_path=str(rejects) if rejects else None,
    )


def _finish(nurture: NurtureApp, job_id: int, **values: Any) -> None:
    with transaction(nurture.sessions) as session:
        job = session.get_one(ImportJob, job_id)
        for name, value in values.items():
            setattr(job, name, value)
        with _lock:
            done = _progress.pop(job_id, 0)
        job.processed_rows = max(done, job.processed_rows)
        if values.get("status") == "done":
            job.processed_rows = job.total_rows
        job.finished_at = nurture.clock()


def _contacts_jobs() -> Any:
    try:
        return importlib.import_module("contacts.jobs")
    except ImportError:
        return None
