"""The editor's Save keeps what the editor does not show: it writes its few fields over the
sequence's current definition (consent, exit, trigger, re-entry, a step's timing and lateness,
`next`, template names), never a definition rebuilt from those fields alone."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from campaigns import content_store
from campaigns.definitions import load_sequence
from nurture.app import NurtureApp
from templates import TEMPLATES_DIR
from web.admin.editor_store import load_draft


def saved_snapshot(app: NurtureApp, name: str) -> dict[str, Any]:
    with app.sessions() as session:
        return content_store.sequence_of(content_store.current_version(session, name)).snapshot()


def opened(app: NurtureApp, name: str) -> dict[str, Any]:
    with app.sessions() as session:
        draft, _ = load_draft(session, name, TEMPLATES_DIR)
    return draft.model_dump()


def save(client: TestClient, csrf: Any, draft: dict[str, Any]) -> Any:
    token = csrf(client.get(f"/admin/sequences/{draft['name']}/edit").text)
    data = {"csrf_token": token, "draft": json.dumps(draft)}
    return client.post("/admin/editor/save", data=data)


@pytest.mark.parametrize("name", ["spasm-relief", "pre-visit"])
def test_open_and_save_keeps_every_setting(
    name: str, editor: TestClient, csrf: Any, staff_accounts: NurtureApp
) -> None:
    answer = save(editor, csrf, opened(staff_accounts, name))
    assert answer.status_code == 200 and answer.json()["saved"], answer.text
    assert saved_snapshot(staff_accounts, name) == load_sequence(name).snapshot()


def test_a_changed_subject_saves_and_the_settings_stay(
    editor: TestClient, csrf: Any, staff_accounts: NurtureApp
) -> None:
    draft = opened(staff_accounts, "pre-visit")
    note = {"subject": "Before your visit: where we are", "preheader": "", "body": "Hello."}
    draft["steps"][0]["messages"] = {"en": note, "es": note}  # its HTML, rewritten in Markdown
    assert save(editor, csrf, draft).json()["saved"]
    first = saved_snapshot(staff_accounts, "pre-visit")
    assert first == load_sequence("pre-visit").snapshot()
    with staff_accounts.sessions() as session:
        version = content_store.current_version(session, "pre-visit")
        email = content_store.files_of(session, version)["01-visit-notes.email.md"]
    assert "Before your visit: where we are" in email
    # the editor's own fields still change: a new title, a step removed, a step added
    draft["title"] = "Before the visit"
    draft["steps"] = [*draft["steps"][:1], {**draft["steps"][0], "name": "more-notes"}]
    assert save(editor, csrf, draft).json()["saved"]
    second = saved_snapshot(staff_accounts, "pre-visit")
    assert second["title"] == "Before the visit"
    assert [step["name"] for step in second["steps"]] == ["visit-notes", "more-notes"]
    assert [step["template"] for step in second["steps"]] == ["01-visit-notes", "02-more-notes"]
    assert second["trigger"] == "booked" and second["reenter_after"] == first["reenter_after"]
    assert second["exit"] == first["exit"] and second["audience"] == first["audience"]
