"""Staff sessions in a signed cookie, CSRF tokens, and the guards every staff route uses.

The cookie holds the staff id, a random session key (its hash is a row in staff_sessions, which
signing out ends: a copied cookie is worthless after logout), a fingerprint of the password hash
(a password change or removal ends every session) and the CSRF token; itsdangerous signs and
timestamps it, so it cannot be forged or kept past its age. HttpOnly, SameSite=Lax, Secure
when the public URL is https. Every POST carries the session's CSRF token in a hidden field
(OWASP synchronizer token); SameSite alone does not cover older browsers or same-site subdomains.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from staff import roles
from staff.accounts import password_fingerprint
from storage.models import StaffSession, StaffUser
from web.services import WebServices

COOKIE = "nurture_staff"
MAX_AGE_SECONDS = 8 * 3600  # one working day
CSRF_FIELD = "csrf_token"


class LoginRequired(Exception):
    """An anonymous visitor on a staff page: sent to the login page (see web.admin.install)."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class StaffNotFound(HTTPException):
    """A staff page for something that does not exist: an HTML 404 (see web.admin.install)."""

    def __init__(self, what: str) -> None:
        super().__init__(404, what)


class StaffForbidden(Exception):
    """A missing or wrong CSRF token, or a viewer trying to change something: 403."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


@dataclass(frozen=True)
class Staff:
    id: int
    email: str
    role: str
    csrf: str
    session_id: str

    @property
    def can_edit(self) -> bool:
        return roles.can_edit(self.role)

    @property
    def can_approve(self) -> bool:
        return roles.can_approve(self.role)

    @property
    def can_upload(self) -> bool:
        """Importing contacts changes data: editors only (the same rule as every edit)."""
        return self.can_edit


@lru_cache(maxsize=4)
def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="nurture-staff-session")


def _nurture(request: Request) -> WebServices:
    services: WebServices = request.app.state.nurture  # Starlette's State is untyped
    return services


def read_session(request: Request) -> dict[str, Any]:
    """The verified cookie payload, or {} when absent, tampered with or too old."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return {}
    serializer = _serializer(_nurture(request).secret_key)
    try:
        data = serializer.loads(raw, max_age=MAX_AGE_SECONDS)
    except BadSignature:
        return {}
    return data if isinstance(data, dict) else {}


def write_session(request: Request, response: Response, data: dict[str, Any]) -> None:
    nurture = _nurture(request)
    token = _serializer(nurture.secret_key).dumps(data)
    response.set_cookie(
        COOKIE,
        token,
        max_age=MAX_AGE_SECONDS,
        path="/admin",
        httponly=True,
        samesite="lax",
        secure=nurture.settings.web.public_base_url.startswith("https://"),
    )


def clear_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/admin")


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


def anonymous_csrf(request: Request) -> tuple[str, bool]:
    """The login form's CSRF token (login CSRF) and whether the cookie must be (re)written."""
    token = read_session(request).get("c")
    if isinstance(token, str) and token:
        return token, False
    return new_csrf(), True


def _session_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def login_session(session: Session, user: StaffUser, now: datetime) -> dict[str, Any]:
    """A fresh session key and CSRF token at login, so one planted before login is worthless
    (session fixation). Sessions ended or past their age are cleared out on the way."""
    session.execute(
        delete(StaffSession).where(
            or_(
                StaffSession.ended_at.is_not(None),
                StaffSession.created_at < now - timedelta(seconds=MAX_AGE_SECONDS),
            )
        )
    )
    key = secrets.token_urlsafe(32)
    session.add(StaffSession(id=_session_id(key), user_id=user.id, created_at=now))
    return {
        "u": user.id,
        "s": key,
        "f": password_fingerprint(user.password_hash),
        "c": new_csrf(),
    }


def end_session(session: Session, staff: Staff, now: datetime) -> None:
    session.execute(
        update(StaffSession)
        .where(StaffSession.id == staff.session_id, StaffSession.ended_at.is_(None))
        .values(ended_at=now)
    )


def current_staff(request: Request) -> Staff | None:
    data = read_session(request)
    user_id, key = data.get("u"), data.get("s")
    fingerprint, csrf = data.get("f"), data.get("c")
    if not isinstance(user_id, int) or not isinstance(key, str) or not isinstance(csrf, str):
        return None
    session_id = _session_id(key)
    with _nurture(request).sessions() as session:
        found = session.execute(
            select(StaffUser)
            .join(StaffSession, StaffSession.user_id == StaffUser.id)
            .where(
                StaffSession.id == session_id,
                StaffSession.user_id == user_id,
                StaffSession.ended_at.is_(None),
            )
        ).scalar_one_or_none()
        if found is None or password_fingerprint(found.password_hash) != fingerprint:
            return None
        return Staff(found.id, found.email, found.role, csrf, session_id)


def may_upload(request: Request) -> bool:
    """Whether the request comes from a signed-in staff member allowed to upload contacts,
    checked from the cookie and the session row alone, before any of the body is read: only
    then does web.app.BodySizeLimit allow an upload's larger size (a forged or stale cookie, or
    a viewer's, keeps the small limit). Blocking: call it from a worker thread."""
    staff = current_staff(request)
    return staff is not None and staff.can_upload


def safe_next(path: str | None) -> str:
    """Only our own staff pages: never an absolute, scheme-relative or backslash URL."""
    if (
        not path
        or not path.startswith("/admin")
        or path.startswith("//")
        or "\\" in path
        or any(ord(char) < 32 for char in path)
    ):
        return "/admin/"
    return path


def _login_redirect_target(request: Request) -> str:
    path = request.url.path
    if request.url.query:
        path += "?" + request.url.query
    return quote(safe_next(path), safe="/")


async def _check_csrf(request: Request, staff_csrf: str) -> None:
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    if not isinstance(sent, str) or not hmac.compare_digest(sent, staff_csrf):
        raise StaffForbidden("This form has expired or did not come from this site. Reload it.")


# -- FastAPI dependencies ----------------------------------------------------------------------
def staff_reader(request: Request) -> Staff:
    """Any signed-in staff member (viewer or editor); anonymous visitors go to the login page."""
    staff = current_staff(request)
    if staff is None:
        raise LoginRequired(_login_redirect_target(request))
    return staff


async def staff_poster(request: Request) -> Staff:
    """A signed-in staff member posting a form with the session's CSRF token (e.g. logout)."""
    staff = staff_reader(request)
    await _check_csrf(request, staff.csrf)
    return staff


async def staff_editor(request: Request) -> Staff:
    """A signed-in editor posting a form with the session's CSRF token. The role is checked
    before the form is read, so a viewer's post is refused without parsing its body."""
    staff = staff_reader(request)
    if not staff.can_edit:
        raise StaffForbidden("Your account can view pages but not change anything.")
    await _check_csrf(request, staff.csrf)
    return staff


async def staff_owner(request: Request) -> Staff:
    """A signed-in owner posting a form with the session's CSRF token (approving a launch)."""
    staff = staff_reader(request)
    if not staff.can_approve:
        raise StaffForbidden("Only an owner can approve a sequence or send it back.")
    await _check_csrf(request, staff.csrf)
    return staff


async def check_login_csrf(request: Request) -> None:
    token = read_session(request).get("c")
    if not isinstance(token, str) or not token:
        raise StaffForbidden("Your login form expired. Reload the page and sign in again.")
    await _check_csrf(request, token)


StaffReader = Annotated[Staff, Depends(staff_reader)]
StaffPoster = Annotated[Staff, Depends(staff_poster)]
StaffEditor = Annotated[Staff, Depends(staff_editor)]
StaffOwner = Annotated[Staff, Depends(staff_owner)]
