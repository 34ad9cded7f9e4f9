"""Fixtures for the staff dashboard: accounts, a signed-in TestClient, CSRF token scraping."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from nurture.app import NurtureApp
from staff import accounts
from storage.db import transaction
from web.app import create_app

PASSWORD = "correct horse battery staple"
EDITOR = "editor@clinic.test"
VIEWER = "viewer@clinic.test"
OWNER = "owner@clinic.test"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


@pytest.fixture
def staff_accounts(sqlite_app: NurtureApp) -> NurtureApp:
    with transaction(sqlite_app.sessions) as session:
        accounts.add_user(session, EDITOR, PASSWORD, "editor")
        accounts.add_user(session, VIEWER, PASSWORD, "viewer")
        accounts.add_user(session, OWNER, PASSWORD, "owner")
    return sqlite_app


@pytest.fixture
def client(staff_accounts: NurtureApp) -> Iterator[TestClient]:
    with TestClient(create_app(staff_accounts), follow_redirects=False) as test_client:
        yield test_client


def sign_in(client: TestClient, email: str, password: str = PASSWORD, next_path: str = "/admin/"):
    form = client.get("/admin/login")
    return client.post(
        "/admin/login",
        data={
            "email": email,
            "password": password,
            "next": next_path,
            "csrf_token": csrf_of(form.text),
        },
    )


@pytest.fixture
def login() -> Callable[..., object]:
    return sign_in


@pytest.fixture
def editor(client: TestClient) -> TestClient:
    assert sign_in(client, EDITOR).status_code == 303
    return client


@pytest.fixture
def owner(client: TestClient) -> TestClient:
    assert sign_in(client, OWNER).status_code == 303
    return client


@pytest.fixture
def viewer(client: TestClient) -> TestClient:
    assert sign_in(client, VIEWER).status_code == 303
    return client


@pytest.fixture
def csrf() -> Callable[[str], str]:
    return csrf_of


@pytest.fixture
def page_csrf(client: TestClient) -> Callable[[str], str]:
    """The CSRF token a signed-in page carries (e.g. page_csrf('/admin/campaigns'))."""
    return lambda path: csrf_of(client.get(path).text)
