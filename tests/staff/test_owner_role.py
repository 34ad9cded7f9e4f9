"""The owner role: everything an editor may do, plus approving; added and changed from the CLI."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from nurture.app import NurtureApp
from nurture.cli.main import app as cli
from staff import accounts
from staff.roles import Role, can_approve, can_edit

PASSWORD = "a long enough passphrase"


def test_owners_edit_and_approve_editors_edit_viewers_read() -> None:
    assert can_edit(Role.OWNER) and can_approve(Role.OWNER)
    assert can_edit(Role.EDITOR) and not can_approve(Role.EDITOR)
    assert not can_edit(Role.VIEWER) and not can_approve(Role.VIEWER)
    assert not can_edit("someone") and not can_approve("")


def test_users_add_and_role_accept_owner(
    sqlite_app: NurtureApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NURTURE_DATABASE__URL", sqlite_app.settings.database.url)
    runner = CliRunner()
    added = runner.invoke(
        cli,
        ["users", "add", "boss@clinic.test", "--role", "owner", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert added.exit_code == 0, added.output
    assert "as owner" in added.output
    demoted = runner.invoke(cli, ["users", "role", "boss@clinic.test", "editor"])
    assert demoted.exit_code == 0 and "is now editor" in demoted.output
    promoted = runner.invoke(cli, ["users", "role", "boss@clinic.test", "owner"])
    assert promoted.exit_code == 0 and "is now owner" in promoted.output
    with sqlite_app.sessions() as session:
        user = accounts.find_user(session, "boss@clinic.test")
        assert user is not None and user.role == "owner"
    refused = runner.invoke(cli, ["users", "role", "boss@clinic.test", "admin"])
    assert refused.exit_code != 0
