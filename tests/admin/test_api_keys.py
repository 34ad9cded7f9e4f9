"""The API keys page: editors create (shown once, stored hashed) and revoke; viewers only look."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import select

from nurture.app import NurtureApp
from staff.api_keys import key_hash
from storage.models import ApiKey

SECRET = re.compile(r'<code id="new-key-secret">(nk_[A-Za-z0-9_-]+)</code>')


def test_an_editor_creates_a_key_shown_once_and_revokes_it(
    editor: TestClient, page_csrf: Callable[[str], str], staff_accounts: NurtureApp
) -> None:
    token = page_csrf("/admin/api-keys")
    created = editor.post(
        "/admin/api-keys", data={"name": "website", "scope": "write", "csrf_token": token}
    )
    assert created.status_code == 201
    match = SECRET.search(created.text)
    assert match, "the new key is not on the page"
    secret = match.group(1)
    with staff_accounts.sessions() as session:
        row = session.scalars(select(ApiKey)).one()
        assert (row.name, row.scope, row.key_hash) == ("website", "write", key_hash(secret))
        assert row.created_by.startswith("editor@clinic.test")
    listing = editor.get("/admin/api-keys")
    assert secret not in listing.text and row.key_prefix in listing.text
    used = editor.get("/api/v1/contacts/1", headers={"Authorization": f"Bearer {secret}"})
    assert used.status_code == 404  # authenticated: the contact just does not exist
    revoked = editor.post(
        f"/admin/api-keys/{row.id}/revoke", data={"csrf_token": page_csrf("/admin/api-keys")}
    )
    assert revoked.status_code == 303 and revoked.headers["location"].endswith("done=revoked")
    refused = editor.get("/api/v1/contacts/1", headers={"Authorization": f"Bearer {secret}"})
    assert refused.status_code == 401


def test_a_bad_scope_is_refused_with_the_reason(
    editor: TestClient, page_csrf: Callable[[str], str]
) -> None:
    response = editor.post(
        "/admin/api-keys",
        data={"name": "x", "scope": "admin", "csrf_token": page_csrf("/admin/api-keys")},
    )
    assert response.status_code == 400 and "write or read" in response.text


def test_a_post_without_the_csrf_token_is_refused(
    editor: TestClient, staff_accounts: NurtureApp
) -> None:
    response = editor.post("/admin/api-keys", data={"name": "x", "scope": "read"})
    assert response.status_code == 403
    with staff_accounts.sessions() as session:
        assert session.scalars(select(ApiKey)).first() is None


def test_a_viewer_sees_the_list_but_cannot_create_or_revoke(
    viewer: TestClient, page_csrf: Callable[[str], str], staff_accounts: NurtureApp
) -> None:
    page = viewer.get("/admin/api-keys")
    assert page.status_code == 200 and "Create key" not in page.text
    token = page_csrf("/admin/api-keys")
    refused = viewer.post(
        "/admin/api-keys", data={"name": "x", "scope": "write", "csrf_token": token}
    )
    assert refused.status_code == 403
    assert viewer.post("/admin/api-keys/1/revoke", data={"csrf_token": token}).status_code == 403
    with staff_accounts.sessions() as session:
        assert session.scalars(select(ApiKey)).first() is None
