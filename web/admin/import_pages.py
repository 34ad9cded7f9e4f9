"""Imports: upload a CSV, watch its progress, download the rejects file.

The upload route takes no body parameters, so FastAPI reads nothing before its dependency has
checked the session and the editor role; only then is the multipart body parsed (and
web.app.BodySizeLimit has allowed its larger size for that same verified session alone).
"""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import select
from starlette.datastructures import UploadFile

from storage.models import ImportJob
from web.admin import imports
from web.admin.render import render
from web.admin.session import Staff, StaffEditor, StaffNotFound, StaffReader
from web.services import WebServices

router = APIRouter()
JobId = Annotated[int, Path(ge=1)]
CHUNK = 1 << 16
MAX_SOURCE = 100


def _job(nurture: WebServices, job_id: int) -> ImportJob:
    with nurture.sessions() as session:
        job = session.get(ImportJob, job_id)
    if job is None:
        raise StaffNotFound("no such import")
    return job


def _status(job: ImportJob) -> dict[str, object]:
    done = job.processed_rows or 0
    total = job.total_rows or 0
    return {
        "id": job.id,
        "status": job.status,
        "processed": min(done, total) if total else done,
        "total": total,
        "percent": round(100 * min(done, total) / total) if total else 0,
        "counts": job.counts or {},
        "rejects": bool(job.rejects_path),
        "error": job.error,
    }


def _page(
    request: Request, staff: Staff, *, error: str | None = None, status: int = 200
) -> Response:
    nurture: WebServices = request.app.state.nurture
    with nurture.sessions() as session:
        jobs = list(session.scalars(select(ImportJob).order_by(ImportJob.id.desc()).limit(20)))
    limit = nurture.settings.web.max_upload_bytes
    return render(
        request,
        "imports.html",
        staff,
        status_code=status,
        jobs=[(job, _status(job)) for job in jobs],
        max_upload_bytes=limit,
        max_upload_label=f"{limit / 1_048_576:.1f} MB"
        if limit >= 1_048_576
        else f"{limit // 1024} KB",
        error=error,
        nav="imports",
    )


@router.get("/imports")
def import_list(request: Request, staff: StaffReader) -> Response:
    return _page(request, staff)


@router.post("/imports")
async def upload(request: Request, staff: StaffEditor) -> Response:
    nurture: WebServices = request.app.state.nurture
    form = await request.form()  # already parsed by the CSRF check, after the role check
    file, source = form.get("file"), form.get("source")
    if not isinstance(file, UploadFile):
        return _page(request, staff, error="Choose a .csv file to upload.", status=400)
    name = (file.filename or "upload.csv").replace("\\", "/").rsplit("/", 1)[-1]
    source = source.strip() if isinstance(source, str) else ""
    if not source:
        return _page(request, staff, error="Say where these contacts came from.", status=400)
    if len(source) > MAX_SOURCE:
        error = f"Name where these contacts came from in at most {MAX_SOURCE} characters."
        return _page(request, staff, error=error, status=400)
    if not name.lower().endswith(".csv"):
        return _page(request, staff, error="Upload a .csv file.", status=400)
    chunks = []
    while chunk := await file.read(CHUNK):
        chunks.append(chunk)
    if not any(chunks):
        return _page(request, staff, error="The file is empty.", status=400)
    path = imports.save_upload(nurture, name, chunks)
    job_id = imports.create_job(nurture, path, name, source)
    imports.start(nurture, job_id, path, source)
    return RedirectResponse(f"/admin/imports/{job_id}", status_code=303)


@router.get("/imports/{job_id}")
def import_page(request: Request, job_id: JobId, staff: StaffReader) -> Response:
    job = _job(request.app.state.nurture, job_id)
    return render(request, "import_job.html", staff, job=job, status=_status(job), nav="imports")


@router.get("/imports/{job_id}/progress.json")
def import_progress(request: Request, job_id: JobId, staff: StaffReader) -> Response:
    job = _job(request.app.state.nurture, job_id)
    return JSONResponse(_status(job), headers={"Cache-Control": "no-store"})


@router.get("/imports/{job_id}/rejects.csv")
def rejects(request: Request, job_id: JobId, staff: StaffReader) -> Response:
    nurture: WebServices = request.app.state.nurture
    job = _job(nurture, job_id)
    if not job.rejects_path:
        raise StaffNotFound("this import rejected no rows")
    path = FilePath(job.rejects_path).resolve()
    if not path.is_relative_to(imports.imports_dir(nurture)) or not path.is_file():
        raise StaffNotFound("the rejects file is no longer there")
    stem = job.filename.rsplit(".", 1)[0].replace('"', "")[:80] or "import"
    return FileResponse(
        path,
        media_type="text/csv; charset=utf-8",
        filename=f"{stem}.rejects.csv",
        headers={"Cache-Control": "no-store"},
    )
