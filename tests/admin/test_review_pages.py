"""Review before launch on the dashboard: an editor asks, an owner approves or sends back, the
launch button waits for an approval of the content as it is, and an editor cannot approve."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from campaigns import content_store, review
from nurture.app import NurtureApp
from storage.models import Campaign
from tests.admin.conftest import EDITOR, OWNER, VIEWER
from tests.admin.conftest import sign_in as first_sign_in


@pytest.fixture(autouse=True)
def reviews_required(clean_environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped default: editors may not launch what no owner approved."""
    monkeypatch.setenv("NURTURE_REVIEW__EDITORS_MAY_LAUNCH", "false")


def sign_in(client: TestClient, email: str) -> None:
    """Sign in as `email`, leaving whoever was signed in before."""
    client.cookies.clear()
    assert first_sign_in(client, email).status_code == 303


def _post(client: TestClient, path: str, **form: str):  # type: ignore[no-untyped-def]
    page = client.get("/admin/campaigns/demo")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return client.post(path, data={"csrf_token": token, **form})


def _launched(app: NurtureApp) -> bool:
    with app.sessions() as session:
        return session.query(Campaign).filter_by(name="demo").count() == 1


def test_an_editor_asks_the_owner_approves_then_the_editor_launches(
    client: TestClient, staff_accounts: NurtureApp
) -> None:
    sign_in(client, EDITOR)
    page = client.get("/admin/campaigns/demo")
    assert "Launch waits: demo has not been approved" in page.text
    assert 'action="/admin/campaigns/demo/launch"' not in page.text
    refused = _post(client, "/admin/campaigns/demo/launch")
    assert (
        refused.status_code == 400 and "cannot launch: demo has not been approved" in refused.text
    )
    assert not _launched(staff_accounts)

    asked = _post(client, "/admin/campaigns/demo/review", comment="new subject line")
    assert asked.status_code == 303
    page = client.get(asked.headers["location"])
    assert "Review requested" in page.text and "new subject line" in page.text
    assert "Waiting for an owner" in page.text

    forbidden = _post(client, "/admin/campaigns/demo/approve")
    assert forbidden.status_code == 403 and "Only an owner" in forbidden.text

    sign_in(client, OWNER)
    page = client.get("/admin/campaigns/demo")
    with staff_accounts.sessions() as session:  # what a launch reads: the stored version
        version = content_store.current_version(session, "demo").content_hash
    assert "Approve version 1" in page.text
    assert f'name="version" value="{version}"' in page.text
    approved = _post(client, "/admin/campaigns/demo/approve", version=version, comment="fine")
    assert approved.status_code == 303
    assert "Approved</strong> by owner@clinic.test" in client.get("/admin/campaigns/demo").text

    sign_in(client, EDITOR)
    page = client.get("/admin/campaigns/demo")
    assert "Launch: approved by owner@clinic.test" in page.text
    assert _post(client, "/admin/campaigns/demo/launch").status_code == 303
    assert _launched(staff_accounts)


def test_an_owner_approves_only_the_version_shown(
    client: TestClient, staff_accounts: NurtureApp
) -> None:
    sign_in(client, OWNER)
    stale = _post(client, "/admin/campaigns/demo/approve", version="f" * 64)
    assert stale.status_code == 400 and "changed since you opened it" in stale.text
    with staff_accounts.sessions() as session:
        assert review.reviews(session, "demo") == []


def test_an_owner_sends_back_with_a_comment_and_launches_after(
    client: TestClient, staff_accounts: NurtureApp
) -> None:
    sign_in(client, OWNER)
    assert _post(client, "/admin/campaigns/demo/send-back", comment="").status_code == 400
    sent = _post(client, "/admin/campaigns/demo/send-back", comment="shorter text please")
    assert sent.status_code == 303
    sign_in(client, EDITOR)
    page = client.get("/admin/campaigns/demo")
    assert "sent back by owner@clinic.test: shorter text please" in page.text
    sign_in(client, OWNER)  # an owner's launch approves what it launches
    assert _post(client, "/admin/campaigns/demo/launch").status_code == 303
    with staff_accounts.sessions() as session:
        latest = review.latest_review(session, "demo")
    assert latest is not None and latest.decision == review.APPROVED
    assert latest.decided_by == OWNER


def test_a_viewer_sees_the_review_but_changes_nothing(client: TestClient) -> None:
    sign_in(client, VIEWER)
    page = client.get("/admin/campaigns/demo")
    assert "Review before launch" in page.text and "Request review" not in page.text
    assert _post(client, "/admin/campaigns/demo/review").status_code == 403
    assert _post(client, "/admin/campaigns/demo/send-back", comment="x").status_code == 403
