"""CSV imports started from the dashboard, run in a background thread, watched by staff.

contacts.jobs does the work and keeps the ImportJob row up to date (status, processed rows,
counts, rejects file) in short transactions of its own, so the progress page reads it while the
import runs. This module only stores the upload where nothing else can reach it and starts the
thread.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from pathlib import Path

from contacts import jobs
from contacts.import_files import imports_folder
from storage.db import transaction
from storage.models import ImportJob
from web.services import WebServices

log = logging.getLogger("nurture.staff.imports")

RUNNING = jobs.RUNNING
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def imports_dir(nurture: WebServices) -> Path:
    """Uploads and rejects files live beside the outbox (var/imports by default)."""
    folder = imports_folder(nurture.settings.outbox.dir)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def safe_name(filename: str) -> str:
    """The uploaded name, reduced to harmless characters (it names the rejects file too)."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem = _UNSAFE.sub("-", base.rsplit(".", 1)[0]).strip(".-")[:80] or "upload"
    return f"{stem}.csv"


def save_upload(nurture: WebServices, filename: str, chunks: list[bytes]) -> Path:
    """A folder with a random name per upload: two staff uploading 'contacts.csv' never collide,
    and no uploaded name is ever used as a path beyond its sanitised last part."""
    folder = imports_dir(nurture) / uuid.uuid4().hex
    folder.mkdir()
    path = folder / safe_name(filename)
    with path.open("wb") as out:
        for chunk in chunks:
            out.write(chunk)
    return path


def create_job(nurture: WebServices, path: Path, filename: str, source: str) -> int:
    job_id = jobs.start_import_job(nurture.sessions, path, source, clock=nurture.clock)
    with transaction(nurture.sessions) as session:
        session.get_one(ImportJob, job_id).filename = filename[:500]
    return job_id


def start(nurture: WebServices, job_id: int, path: Path, source: str) -> threading.Thread:
    thread = threading.Thread(
        target=run, args=(nurture, job_id, path, source), name=f"import-{job_id}", daemon=True
    )
    thread.start()
    return thread


def run(nurture: WebServices, job_id: int, path: Path, source: str) -> None:
    """Run one import; contacts.jobs records the outcome on the row whatever happens."""
    try:
        jobs.run_import_job(
            nurture.sessions,
            job_id,
            path,
            source,
            default_timezone=nurture.settings.clinic.default_timezone,
            clock=nurture.clock,
        )
    except Exception:  # already recorded on the row as failed; the thread must not die loudly
        log.exception("import job %d stopped", job_id)
