"""The webhooks page: a login to see it, an editor to register (secret shown once), test,
deactivate and delete; viewers only look; every change needs the CSRF token."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from nurture.app import NurtureApp
from storage.models import WebhookDelivery, WebhookEndpoint

SECRET = re.compile(r'<code id="new-endpoint-secret">(whsec_[A-Za-z0-9_-]+)</code>')
URL = "https://crm.example.com/hooks/nurture"


def _register(editor: TestClient, page_csrf: Callable[[str], str], **form: object) -> Any:
    data = {"url": URL, "event_types": ["contact.opted_out", "contact.booked"]}
    data.update(form)
    return editor.post("/admin/webhooks", data={**data, "csrf_token": page_csrf("/admin/webhooks")})


def _endpoints(app: NurtureApp) -> list[WebhookEndpoint]:
    with app.sessions() as session:
        rows = list(session.scalars(select(WebhookEndpoint)))
        session.expunge_all()
        return rows


def test_the_page_needs_a_login(client: TestClient) -> None:
    page = client.get("/admin/webhooks")
    assert page.status_code == 303 and "/admin/login" in page.headers["location"]
    posted = client.post("/admin/webhooks", data={"url": URL})
    assert posted.status_code in (303, 403)


def test_an_editor_registers_an_endpoint_whose_secret_is_shown_once(
    editor: TestClient, page_csrf: Callable[[str], str], staff_accounts: NurtureApp
) -> None:
    created = _register(editor, page_csrf)
    assert created.status_code == 201
    match = SECRET.search(created.text)
    assert match, "the new secret is not on the page"
    [row] = _endpoints(staff_accounts)
    assert row.secret == match.group(1) and row.url == URL
    assert row.event_types == ["contact.booked", "contact.opted_out"]
    assert row.created_by.startswith("editor@clinic.test")
    listing = editor.get("/admin/webhooks")
    assert match.group(1) not in listing.text and row.secret_prefix in listing.text
    assert "X-Nurture-Signature" in listing.text  # the receiver's recipe


def test_an_editor_sends_a_test_event_deactivates_and_deletes(
    editor: TestClient, page_csrf: Callable[[str], str], staff_accounts: NurtureApp
) -> None:
    _register(editor, page_csrf)
    [row] = _endpoints(staff_accounts)
    tested = editor.post(
        f"/admin/webhooks/{row.id}/test", data={"csrf_token": page_csrf("/admin/webhooks")}
    )
    assert tested.status_code == 303 and tested.headers["location"].endswith("done=tested")
    with staff_accounts.sessions() as session:
        delivery = session.scalars(select(WebhookDelivery)).one()
        assert delivery.event_type == "webhook.test" and delivery.next_attempt_at is not None
    page = editor.get("/admin/webhooks")
    assert "webhook.test" in page.text and "Next try" in page.text
    off = editor.post(
        f"/admin/webhooks/{row.id}/deactivate", data={"csrf_token": page_csrf("/admin/webhooks")}
    )
    assert off.headers["location"].endswith("done=deactivated")
    assert _endpoints(staff_accounts)[0].active is False
    again = editor.post(
        f"/admin/webhooks/{row.id}/test", data={"csrf_token": page_csrf("/admin/webhooks")}
    )
    assert again.status_code == 400 and "deactivated" in again.text
    gone = editor.post(
        f"/admin/webhooks/{row.id}/delete", data={"csrf_token": page_csrf("/admin/webhooks")}
    )
    assert gone.headers["location"].endswith("done=deleted")
    assert _endpoints(staff_accounts) == []
    with staff_accounts.sessions() as session:
        assert session.scalars(select(WebhookDelivery)).all() == []
    missing = editor.post(
        f"/admin/webhooks/{row.id}/delete", data={"csrf_token": page_csrf("/admin/webhooks")}
    )
    assert missing.status_code == 404


@pytest.fixture
def production_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """[webhooks] allow_private_addresses as shipped (tests/conftest.py turns it on); listed
    before the app's fixtures, so the app loads its settings after this."""
    monkeypatch.setenv("NURTURE_WEBHOOKS__ALLOW_PRIVATE_ADDRESSES", "false")


def test_a_bad_url_is_refused_with_the_reason(
    production_rules: None,
    editor: TestClient,
    page_csrf: Callable[[str], str],
    staff_accounts: NurtureApp,
) -> None:
    assert staff_accounts.settings.webhooks.allow_private_addresses is False
    refused = _register(editor, page_csrf, url="http://crm.example.com/hook")
    assert refused.status_code == 400 and "use https" in refused.text
    for url in ("https://169.254.169.254/latest/", "https://localhost:6379/", "https://[::1]/"):
        refused = _register(editor, page_csrf, url=url)
        assert refused.status_code == 400 and "public address" in refused.text
    none = _register(editor, page_csrf, event_types=[])
    assert none.status_code == 400 and "at least one" in none.text
    assert _endpoints(staff_accounts) == []


def test_a_viewer_sees_the_page_but_cannot_change_anything(
    viewer: TestClient, page_csrf: Callable[[str], str], staff_accounts: NurtureApp
) -> None:
    page = viewer.get("/admin/webhooks")
    assert page.status_code == 200 and "Register endpoint" not in page.text
    refused = viewer.post(
        "/admin/webhooks",
        data={
            "url": URL,
            "event_types": ["contact.opted_out"],
            "csrf_token": page_csrf("/admin/webhooks"),
        },
    )
    assert refused.status_code == 403 and _endpoints(staff_accounts) == []


def test_a_post_without_the_csrf_token_is_refused(
    editor: TestClient, staff_accounts: NurtureApp
) -> None:
    response = editor.post("/admin/webhooks", data={"url": URL, "event_types": ["contact.booked"]})
    assert response.status_code == 403 and _endpoints(staff_accounts) == []


def test_this_machine_is_accepted_where_the_setting_allows_it(
    editor: TestClient, page_csrf: Callable[[str], str], staff_accounts: NurtureApp
) -> None:
    """tests/conftest.py sets [webhooks] allow_private_addresses, as local development may."""
    assert _register(editor, page_csrf, url="http://127.0.0.1:9000/h").status_code == 201


TOKEN_URL = "https://crm.example.com/hooks/nurture/tok_Secret123456/?key=sekrit99"
SHOWN = "https://crm.example.com/hooks/nurture/t…?…"


def _no_token(text: str) -> bool:
    return "Secret123456" not in text and "sekrit99" not in text and SHOWN in text


def test_an_editor_never_sees_a_token_in_an_endpoints_url_again(
    editor: TestClient, page_csrf: Callable[[str], str], staff_accounts: NurtureApp
) -> None:
    """A receiver's URL may carry its token in the path or query: the page shows scheme, host
    and the path's start (an editor who needs the URL registers it again)."""
    created = _register(editor, page_csrf, url=TOKEN_URL)
    assert created.status_code == 201 and _no_token(created.text)
    assert _no_token(editor.get("/admin/webhooks").text)


def test_a_viewer_never_sees_a_token_in_an_endpoints_url(
    viewer: TestClient, staff_accounts: NurtureApp
) -> None:
    from staff.webhook_endpoints import queue_test, register
    from storage.db import transaction

    with transaction(staff_accounts.sessions) as session:
        made = register(session, url=TOKEN_URL, event_types=["contact.opted_out"],
                        created_by="t", at=staff_accounts.clock())  # fmt: skip
        queue_test(session, made.id, at=staff_accounts.clock())
    page = viewer.get("/admin/webhooks")
    assert page.status_code == 200 and _no_token(page.text)
    assert "webhook.test" in page.text  # the deliveries table names the endpoint the same way
