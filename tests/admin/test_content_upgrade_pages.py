"""The dashboard reads sequences from the content store (issue 20): a sequence saved only in the
store has its page, preview and projection; reviews are of a stored version (its content hash
and number); a running campaign moves to a newer version by the launch's one rule, and a viewer,
an unapproved editor, a version that fails validation and a stale page are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from campaigns import content_store, review
from campaigns.content_render import materialize
from core.errors import InputError
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import Campaign, ContentVersion
from tests.admin.conftest import EDITOR, OWNER, VIEWER
from tests.admin.test_review_pages import sign_in

NAME = "store-only"
SUBJECT = "Only in the store, {{ contact.first_name }}\n"


@pytest.fixture(autouse=True)
def reviews_required(clean_environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NURTURE_REVIEW__EDITORS_MAY_LAUNCH", "false")


def _save(app: NurtureApp, name: str, edit: dict[str, str], **changes: object) -> ContentVersion:
    """A version of `name` on the seeded demo's definition and files, with `edit` applied."""
    with transaction(app.sessions) as session:
        demo = content_store.current_version(session, "demo")
        definition = {**demo.definition, "name": name, **changes}
        files = {**content_store.files_of(session, demo), **edit}
        version, _ = content_store.save_version(
            session, name, definition=definition, templates=files, author=EDITOR, now=app.clock()
        )
        return version


def _post(client: TestClient, name: str, action: str, **form: str):  # type: ignore[no-untyped-def]
    page = client.get(f"/admin/campaigns/{name}")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return client.post(f"/admin/campaigns/{name}/{action}", data={"csrf_token": token, **form})


def test_a_sequence_only_in_the_store_has_its_pages_and_is_reviewed_by_version(
    client: TestClient, staff_accounts: NurtureApp
) -> None:
    version = _save(staff_accounts, NAME, {"01-welcome.subject.txt": SUBJECT}, title="Store only")
    sign_in(client, EDITOR)
    assert "Store only" in client.get("/admin/campaigns").text
    page = client.get(f"/admin/campaigns/{NAME}")
    assert page.status_code == 200 and "Launch waits: store-only has not been approved" in page.text
    preview = client.get(f"/admin/campaigns/{NAME}/preview")
    assert preview.status_code == 200 and "Only in the store, " in preview.text
    assert client.get(f"/admin/campaigns/{NAME}/projection").status_code == 200
    assert client.get("/admin/campaigns/no-such-thing").status_code == 404

    assert _post(client, NAME, "review").status_code == 303
    assert _post(client, NAME, "approve", version=version.content_hash).status_code == 403
    sign_in(client, OWNER)
    approved = _post(client, NAME, "approve", version=version.content_hash)
    assert approved.status_code == 303
    with staff_accounts.sessions() as session:
        record = review.latest_review(session, NAME)
    assert record is not None and (record.fingerprint, record.version) == (version.content_hash, 1)
    sign_in(client, EDITOR)
    assert "Launch: approved by owner@clinic.test" in client.get(f"/admin/campaigns/{NAME}").text
    assert _post(client, NAME, "launch").status_code == 303
    with staff_accounts.sessions() as session:
        campaign = session.query(Campaign).filter_by(name=NAME).one()
        assert campaign.content_version_id == version.id


@pytest.fixture
def running_demo(client: TestClient, staff_accounts: NurtureApp) -> NurtureApp:
    """demo launched by an owner at its seeded version 1."""
    sign_in(client, OWNER)
    assert _post(client, "demo", "launch").status_code == 303
    return staff_accounts


def test_moving_needs_the_new_version_approved_and_a_viewer_cannot(
    client: TestClient, running_demo: NurtureApp
) -> None:
    _save(running_demo, "demo", {"01-welcome.subject.txt": "Version two\n"})
    sign_in(client, VIEWER)
    page = client.get("/admin/campaigns/demo").text
    assert "Version 1 → 2" in page and "Move to version 2" not in page
    assert _post(client, "demo", "upgrade", version="2").status_code == 403

    sign_in(client, EDITOR)
    page = client.get("/admin/campaigns/demo").text
    assert "Moving waits: demo changed since it was approved by owner@clinic.test" in page
    refused = _post(client, "demo", "upgrade", version="2")
    assert refused.status_code == 400 and "cannot move to version 2" in refused.text

    sign_in(client, OWNER)
    assert _post(client, "demo", "upgrade", version="1").status_code == 400  # a stale page
    moved = _post(client, "demo", "upgrade", version="2")
    assert moved.status_code == 303
    with running_demo.sessions() as session:
        campaign = session.query(Campaign).filter_by(name="demo").one()
        assert content_store.current_version(session, "demo").id == campaign.content_version_id
        record = review.latest_review(session, "demo")
    assert record is not None and (record.decided_by, record.version) == (OWNER, 2)


def test_a_version_that_fails_validation_is_not_moved_to(
    client: TestClient, running_demo: NurtureApp
) -> None:
    with running_demo.sessions() as session:
        steps = content_store.current_version(session, "demo").definition["steps"]
    steps[1] = {**steps[1], "window": {"days": "mon-sun", "start": "07:00", "end": "22:00"}}
    _save(running_demo, "demo", {}, steps=steps)
    sign_in(client, OWNER)
    page = client.get("/admin/campaigns/demo").text
    assert "Version 2 cannot be used until these are fixed" in page
    assert "Move to version 2" not in page
    refused = _post(client, "demo", "upgrade", version="2")
    assert refused.status_code == 400 and "Version 2 cannot be used yet" in refused.text
    with running_demo.sessions() as session:
        campaign = session.query(Campaign).filter_by(name="demo").one()
        pinned = session.get(ContentVersion, campaign.content_version_id)
        assert pinned is not None and pinned.number == 1


@pytest.mark.parametrize("folder", ["layouts", "../escape", "a/b", ".hidden", ""])
def test_the_store_renders_no_folder_but_its_own(folder: str, tmp_path: Path) -> None:
    with pytest.raises(InputError):
        materialize("0" * 64, folder, {"01-welcome.subject.txt": "Hi\n"}, tmp_path)
    with pytest.raises(InputError):
        materialize("1" * 64, "fine", {"../../layouts/base.html": "x"}, tmp_path)
    assert not any(tmp_path.iterdir())
