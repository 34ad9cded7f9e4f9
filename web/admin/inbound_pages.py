"""Inbound texts that were not a clear keyword, as conversations: the free-text revocations acted
on when they arrived, and the unclear ones no rule was sure of, with the campaign texts and staff
answers around them. Everyone reads them (sender masked); an editor marks an unclear one as a
revocation with one click, through contacts.inbound, because the FCC's 2025 rule
(47 CFR 64.1200(a)(10)) counts any reasonable way of saying stop.

An editor also answers a contact from here (scheduler.staff_replies: the engine's consent,
suppression and quiet-hours rules, refused rather than queued at night) and resumes or ends the
sequence a reply paused (campaigns.replies). Every form is a CSRF-checked POST (StaffEditor);
viewers are refused before the form is read.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from campaigns.replies import end, enrollments_of, resume
from contacts.inbound import conversations, mark_as_revocation
from core.errors import NurtureError
from core.redact import redact
from providers.base import ProviderError, SendResult
from scheduler.staff_replies import Answer, prepare_answer, record_answer
from storage.db import transaction
from web.admin.render import render
from web.admin.session import Staff, StaffEditor, StaffReader
from web.services import WebServices

router = APIRouter()
EventId = Annotated[int, Path(ge=1, le=2**63 - 1)]
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
#: Notices after a redirect, by code, so no request can make the page say anything else.
DONE = {
    "marked": "Marked as a revocation: no more texts go to that number until it texts START.",
    "already": "That text was already a revocation: nothing more to do.",
    "answered": "Answer sent and recorded.",
    "resumed": "Sequence resumed: its next text goes at its due time.",
    "ended": "Sequence ended: no more of its texts go to this contact.",
}


def _page(
    request: Request, staff: Staff, *, error: str | None = None, status: int = 200
) -> Response:
    nurture: WebServices = request.app.state.nurture
    with nurture.sessions() as session:
        talks = conversations(session)
        enrollments = enrollments_of(session, {c.contact_id for c in talks if c.contact_id})
    return render(
        request, "inbound.html", staff, status_code=status, conversations=talks,
        enrollments=enrollments, error=error,
        notice=DONE.get(request.query_params.get("done", "")), nav="inbound",
    )  # fmt: skip


def _by(staff: Staff) -> str:
    return f"{staff.email} (staff #{staff.id})"


def _done(code: str) -> Response:
    return RedirectResponse(f"/admin/inbound?done={code}", status_code=303)


@router.get("/inbound")
def inbound(request: Request, staff: StaffReader) -> Response:
    return _page(request, staff)


@router.post("/inbound/{event_id}/revocation")
def mark(request: Request, staff: StaffEditor, event_id: EventId) -> Response:
    nurture: WebServices = request.app.state.nurture
    try:
        with transaction(nurture.sessions) as session:
            marked = mark_as_revocation(session, event_id, by=_by(staff), at=nurture.clock())
    except NurtureError as exc:
        return _page(request, staff, error=str(exc), status=400)
    return _done("marked" if marked else "already")


@router.post("/inbound/contacts/{contact_id}/answer")
async def answer(
    request: Request,
    staff: StaffEditor,
    contact_id: RowId,
    body: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Checked, sent through the configured SMS channel, then recorded (a provider's refusal
    is shown; nothing is recorded for an answer that did not leave)."""
    nurture: WebServices = request.app.state.nurture

    def prepare() -> Answer:
        with transaction(nurture.sessions, immediate=False) as session:
            return prepare_answer(session, nurture.settings, contact_id, body, now=nurture.clock())

    def record(ready: Answer, result: SendResult) -> None:
        with transaction(nurture.sessions) as session:
            record_answer(session, ready, result, by=_by(staff), at=nurture.clock())

    try:
        ready = await run_in_threadpool(prepare)
    except NurtureError as exc:
        return await run_in_threadpool(_page, request, staff, error=str(exc), status=400)
    channel = nurture.direct_sms()
    try:
        result = await channel.send(ready.sms)
    except ProviderError as exc:
        error = f"Not sent: the SMS provider refused it ({redact(str(exc))})."
        return await run_in_threadpool(_page, request, staff, error=error, status=502)
    finally:
        await channel.aclose()
    await run_in_threadpool(record, ready, result)
    return _done("answered")


@router.post("/inbound/enrollments/{enrollment_id}/resume")
def resume_enrollment(request: Request, staff: StaffEditor, enrollment_id: RowId) -> Response:
    return _change(request, staff, enrollment_id, "resumed")


@router.post("/inbound/enrollments/{enrollment_id}/end")
def end_enrollment(request: Request, staff: StaffEditor, enrollment_id: RowId) -> Response:
    return _change(request, staff, enrollment_id, "ended")


def _change(request: Request, staff: Staff, enrollment_id: int, done: str) -> Response:
    nurture: WebServices = request.app.state.nurture
    action = resume if done == "resumed" else end
    try:
        with transaction(nurture.sessions) as session:
            action(session, enrollment_id, by=_by(staff), at=nurture.clock())
    except NurtureError as exc:
        return _page(request, staff, error=str(exc), status=400)
    return _done(done)
