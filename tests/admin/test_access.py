"""Sign-in, sessions, CSRF, roles and lockout, through the real app with FastAPI's TestClient."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.clock import FrozenClock
from nurture.app import NurtureApp
from staff import accounts
from storage.db import transaction
from storage.models import Campaign, StaffSession
from web.admin.session import COOKIE

EDITOR, VIEWER, PASSWORD = (
    "editor@clinic.test",
    "viewer@clinic.test",
    "correct horse battery staple",
)


@pytest.mark.parametrize(
    "path",
    [
        "/admin/",
        "/admin/campaigns",
        "/admin/campaigns/spasm-relief",
        "/admin/contacts?q=a",
        "/admin/imports",
        "/admin/campaigns/spasm-relief/preview",
        "/admin/campaigns/spasm-relief/steps/0/email.html",
    ],
)
def test_anonymous_visitors_are_sent_to_the_login_page(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/admin/login?next=/admin/")


def test_anonymous_post_changes_nothing(client: TestClient, staff_accounts: NurtureApp) -> None:
    response = client.post("/admin/campaigns/demo/launch", data={"csrf_token": "x"})
    assert response.status_code == 303
    assert response.headers["location"].startswith("/admin/login")
    with staff_accounts.sessions() as session:
        assert session.query(Campaign).count() == 0


def test_sign_in_sets_a_hardened_cookie_and_returns_to_the_page_asked_for(
    client: TestClient, login
) -> None:
    response = login(client, EDITOR, next_path="/admin/contacts?q=pat")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/contacts?q=pat"
    cookie = response.headers["set-cookie"]
    assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Path=/admin" in cookie and "Secure" not in cookie  # http public URL in tests
    page = client.get("/admin/campaigns")
    assert page.status_code == 200 and EDITOR in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/admin", "/\\evil.example", "/elsewhere"]
)
def test_next_never_leaves_the_dashboard(client: TestClient, login, target: str) -> None:
    response = login(client, EDITOR, next_path=target)
    assert response.headers["location"] == "/admin/"


def test_wrong_password_and_unknown_email_get_the_same_answer(client: TestClient, login) -> None:
    wrong = login(client, EDITOR, password="not the password at all")
    unknown = login(client, "nobody@clinic.test")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong email or password." in wrong.text and "Wrong email or password." in unknown.text
    assert COOKIE not in client.cookies or client.get("/admin/campaigns").status_code == 303


def test_login_without_csrf_token_is_refused(client: TestClient, staff_accounts) -> None:
    client.get("/admin/login")
    response = client.post("/admin/login", data={"email": EDITOR, "password": PASSWORD})
    assert response.status_code == 403
    with staff_accounts.sessions() as session:
        assert accounts.find_user(session, EDITOR).failed_logins == 0


def test_five_failures_lock_the_account_for_fifteen_minutes(
    client: TestClient, login, staff_accounts: NurtureApp, frozen_clock: FrozenClock
) -> None:
    for _ in range(4):
        assert (
            "Wrong email or password." in login(client, EDITOR, password="guess-guess-guess").text
        )
    fifth = login(client, EDITOR, password="guess-guess-guess")
    assert fifth.status_code == 401 and "locked for 15 minutes" in fifth.text  # the one message
    refused = login(client, EDITOR)  # even the right password
    assert refused.status_code == 401
    with staff_accounts.sessions() as session:
        assert accounts.find_user(session, EDITOR).locked_until is not None
    frozen_clock.advance(minutes=14)
    assert login(client, EDITOR).status_code == 401
    frozen_clock.advance(minutes=2)
    assert login(client, EDITOR).status_code == 303
    with staff_accounts.sessions() as session:
        user = accounts.find_user(session, EDITOR)
        assert user.failed_logins == 0 and user.locked_until is None


def test_an_expired_lock_counts_failures_afresh(
    client: TestClient, login, frozen_clock: FrozenClock
) -> None:
    for _ in range(5):
        login(client, EDITOR, password="guess-guess-guess")
    frozen_clock.advance(minutes=16)
    response = login(client, EDITOR, password="guess-guess-guess")
    assert "Wrong email or password." in response.text  # one failure, not locked again


def test_logs_never_carry_passwords_or_full_emails(
    client: TestClient, login, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    login(client, EDITOR, password="a-wrong-password-123")
    login(client, EDITOR)
    text = caplog.text
    assert "a-wrong-password-123" not in text and PASSWORD not in text
    assert EDITOR not in text and "e***@clinic.test" in text


def test_a_post_without_its_csrf_token_is_refused(editor: TestClient, staff_accounts) -> None:
    response = editor.post("/admin/campaigns/demo/launch", data={"starts_at": ""})
    assert response.status_code == 403
    assert "did not come from this site" in response.text
    forged = editor.post("/admin/campaigns/demo/launch", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    with staff_accounts.sessions() as session:
        assert session.query(Campaign).count() == 0


def test_a_token_from_another_session_is_refused(staff_accounts: NurtureApp, login, csrf) -> None:
    from web.app import create_app

    api = create_app(staff_accounts)
    with (
        TestClient(api, follow_redirects=False) as first,
        TestClient(api, follow_redirects=False) as second,
    ):
        login(first, EDITOR)
        login(second, EDITOR)
        token_of_first = csrf(first.get("/admin/campaigns/demo").text)
        response = second.post("/admin/campaigns/demo/launch", data={"csrf_token": token_of_first})
        assert response.status_code == 403


def test_a_viewer_reads_everything_and_changes_nothing(
    viewer: TestClient, staff_accounts: NurtureApp, csrf
) -> None:
    page = viewer.get("/admin/campaigns/demo")
    assert page.status_code == 200
    assert "can view this campaign but not change it" in page.text
    assert "/launch" not in page.text
    token = csrf(page.text)  # the sign-out form's token: valid, but the role is not
    for path in (
        "/admin/campaigns/demo/launch",
        "/admin/campaigns/demo/pause",
        "/admin/campaigns/demo/resume",
        "/admin/campaigns/demo/cancel",
        "/admin/contacts/1/suppress",
        "/admin/contacts/1/booked",
    ):
        response = viewer.post(path, data={"csrf_token": token, "channel": "email"})
        assert response.status_code == 403, path
        assert "not change anything" in response.text
    upload = viewer.post(
        "/admin/imports",
        data={"csrf_token": token, "source": "x"},
        files={"file": ("a.csv", b"email\na@example.com\n", "text/csv")},
    )
    assert upload.status_code == 403
    with staff_accounts.sessions() as session:
        assert session.query(Campaign).count() == 0


def test_sign_out_needs_the_token_and_ends_the_session(editor: TestClient, csrf) -> None:
    assert editor.post("/admin/logout").status_code == 403
    token = csrf(editor.get("/admin/campaigns").text)
    response = editor.post("/admin/logout", data={"csrf_token": token})
    assert response.status_code == 303 and "logged-out" in response.headers["location"]
    assert editor.get("/admin/campaigns").status_code == 303


def test_a_cookie_copied_before_sign_out_is_worthless_after_it(
    editor: TestClient, staff_accounts, csrf
) -> None:
    copied = editor.cookies.get(COOKIE)
    assert editor.get("/admin/campaigns").status_code == 200
    token = csrf(editor.get("/admin/campaigns").text)
    assert editor.post("/admin/logout", data={"csrf_token": token}).status_code == 303
    editor.cookies.clear()
    editor.cookies.set(COOKIE, copied, path="/admin")
    response = editor.get("/admin/campaigns")
    assert response.status_code == 303 and "/admin/login" in response.headers["location"]
    with staff_accounts.sessions() as session:
        [ended] = session.scalars(select(StaffSession)).all()
        assert ended.ended_at is not None


def test_a_tampered_cookie_is_ignored(editor: TestClient) -> None:
    value = editor.cookies.get(COOKIE)
    editor.cookies.clear()
    editor.cookies.set(COOKIE, value[:-2] + ("AA" if value[-2:] != "AA" else "BB"))
    assert editor.get("/admin/campaigns").status_code == 303


def test_password_change_and_removal_end_existing_sessions(
    editor: TestClient, staff_accounts: NurtureApp
) -> None:
    assert editor.get("/admin/campaigns").status_code == 200
    with transaction(staff_accounts.sessions) as session:
        accounts.set_password(session, EDITOR, "a brand new passphrase")
    assert editor.get("/admin/campaigns").status_code == 303


def test_secure_cookie_when_the_public_url_is_https(tmp_path, frozen_clock, channel, login) -> None:
    from core.settings import load_settings
    from web.app import create_app

    app = NurtureApp(
        settings=load_settings(
            database={"url": f"sqlite:///{tmp_path / 'https.db'}"},
            web={"public_base_url": "https://nurture.example"},
        ),
        clock=frozen_clock,
        email_override=channel,
        sms_override=channel,
    )
    app.migrate()
    with transaction(app.sessions) as session:
        accounts.add_user(session, EDITOR, PASSWORD, "editor")
    with TestClient(create_app(app), base_url="https://testserver", follow_redirects=False) as c:
        response = login(c, EDITOR)
        assert response.status_code == 303 and "Secure" in response.headers["set-cookie"]
    app.dispose()


def test_an_owner_signs_in_sees_the_role_and_may_edit(owner: TestClient) -> None:
    page = owner.get("/admin/campaigns")
    assert page.status_code == 200 and "owner@clinic.test · owner" in page.text
