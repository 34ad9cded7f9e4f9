"""Sign in and out. Failures count toward the account's lockout (see staff.accounts)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from staff.accounts import SIGN_IN_FAILED, authenticate
from storage.db import transaction
from web.admin.render import render
from web.admin.session import (
    StaffPoster,
    anonymous_csrf,
    check_login_csrf,
    clear_session,
    current_staff,
    end_session,
    login_session,
    safe_next,
    write_session,
)
from web.services import WebServices

router = APIRouter()


def _login_page(
    request: Request, *, next_path: str, error: str | None = None, status_code: int = 200
) -> Response:
    token, fresh = anonymous_csrf(request)
    response = render(
        request,
        "login.html",
        None,
        status_code=status_code,
        csrf=token,
        next_path=safe_next(next_path),
        error=error,
    )
    if fresh:
        write_session(request, response, {"c": token})
    return response


@router.get("/login")
def login_form(request: Request, next: str = "/admin/") -> Response:
    if current_staff(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(request, next_path=next)


@router.post("/login", dependencies=[Depends(check_login_csrf)])
def login(
    request: Request,
    email: str = Form("", max_length=320),
    password: str = Form("", max_length=1024),
    next: str = Form("/admin/", max_length=2000),
) -> Response:
    nurture: WebServices = request.app.state.nurture
    with transaction(nurture.sessions) as session:
        outcome = authenticate(session, email, password, now=nurture.clock())
        new_session = (
            login_session(session, outcome.user, nurture.clock())
            if outcome.user is not None
            else None
        )
    if new_session is None:  # one answer for every failure: no account enumeration (OWASP)
        return _login_page(request, next_path=next, error=SIGN_IN_FAILED, status_code=401)
    response = RedirectResponse(safe_next(next), status_code=303)
    write_session(request, response, new_session)
    return response


@router.post("/logout")
def logout(request: Request, staff: StaffPoster) -> Response:
    nurture: WebServices = request.app.state.nurture
    with transaction(nurture.sessions) as session:
        end_session(session, staff, nurture.clock())
    response = RedirectResponse("/admin/login?done=logged-out", status_code=303)
    clear_session(response)
    return response
