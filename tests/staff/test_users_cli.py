"""`nurture users`: add (prompted, stdin or env password), list, role, password, unlock, remove."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from nurture.app import NurtureApp
from nurture.cli.main import app as cli
from staff import accounts
from storage.db import transaction

PASSWORD = "a long enough passphrase"


@pytest.fixture
def run(sqlite_app: NurtureApp, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("NURTURE_DATABASE__URL", sqlite_app.settings.database.url)

    def invoke(*args: str, stdin: str | None = None):
        return CliRunner().invoke(cli, list(args), input=stdin)

    return invoke


def _said(result) -> str:
    """What the person sees: output, or the NurtureError main() prints as one line."""
    return result.output + (str(result.exception) if result.exception else "")


def _user(app: NurtureApp, email: str):
    with app.sessions() as session:
        return accounts.find_user(session, email)


def test_add_prompts_twice_for_the_password(run, sqlite_app: NurtureApp) -> None:
    result = run(
        "users", "add", "Sam@Clinic.test", "--role", "editor", stdin=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    assert "added S***@Clinic.test as editor" in result.output
    assert "Sam@Clinic.test" not in result.output and PASSWORD not in result.output
    user = _user(sqlite_app, "sam@clinic.test")
    assert user.role == "editor" and accounts.hasher.verify(user.password_hash, PASSWORD)


def test_add_reads_stdin_or_the_environment_for_scripts(
    run, sqlite_app: NurtureApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (
        run(
            "users",
            "add",
            "a@clinic.test",
            "--role",
            "viewer",
            "--password-stdin",
            stdin=PASSWORD + "\n",
        ).exit_code
        == 0
    )
    monkeypatch.setenv("NURTURE_STAFF_PASSWORD", PASSWORD)
    assert run("users", "add", "b@clinic.test", "--role", "viewer").exit_code == 0
    assert _user(sqlite_app, "a@clinic.test").role == "viewer"
    assert _user(sqlite_app, "b@clinic.test") is not None


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (
            ("users", "add", "c@clinic.test", "--role", "viewer", "--password-stdin"),
            "short\n",
            "at least 12",
        ),
        (
            ("users", "add", "not-an-email", "--role", "viewer", "--password-stdin"),
            PASSWORD + "\n",
            "must be an email",
        ),
        (
            ("users", "add", "c@clinic.test", "--role", "admin", "--password-stdin"),
            PASSWORD + "\n",
            "admin",
        ),
    ],
)
def test_bad_input_is_refused(run, sqlite_app: NurtureApp, args, stdin, message) -> None:
    result = run(*args, stdin=stdin)
    assert result.exit_code != 0 and message in _said(result)
    assert _user(sqlite_app, "c@clinic.test") is None


def test_duplicate_list_role_unlock_password_remove(
    run, sqlite_app: NurtureApp, frozen_clock
) -> None:
    assert (
        run(
            "users",
            "add",
            "d@clinic.test",
            "--role",
            "viewer",
            "--password-stdin",
            stdin=PASSWORD + "\n",
        ).exit_code
        == 0
    )
    again = run(
        "users",
        "add",
        "D@clinic.test",
        "--role",
        "viewer",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert again.exit_code != 0 and "already exists" in _said(again)
    assert "d@clinic.test" not in _said(again)
    assert run("users", "role", "d@clinic.test", "editor").exit_code == 0
    with transaction(sqlite_app.sessions) as session:
        user = accounts.find_user(session, "d@clinic.test")
        user.failed_logins, user.locked_until = 5, frozen_clock()
    listing = run("users", "list")
    assert "d@clinic.test  editor  locked until" in listing.output
    assert run("users", "unlock", "d@clinic.test").exit_code == 0
    assert _user(sqlite_app, "d@clinic.test").locked_until is None
    new = "another long passphrase"
    assert (
        run("users", "password", "d@clinic.test", "--password-stdin", stdin=new + "\n").exit_code
        == 0
    )
    assert accounts.hasher.verify(_user(sqlite_app, "d@clinic.test").password_hash, new)
    assert run("users", "remove", "d@clinic.test").exit_code == 0
    assert _user(sqlite_app, "d@clinic.test") is None
    assert run("users", "remove", "d@clinic.test").exit_code != 0


def test_phone_sets_the_number_test_texts_go_to(run, sqlite_app: NurtureApp) -> None:
    added = run(
        "users", "add", "p@clinic.test", "--role", "editor", "--password-stdin",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert added.exit_code == 0
    result = run("users", "phone", "p@clinic.test", "(310) 555-0199")
    assert result.exit_code == 0 and "+1******0199" in result.output
    assert _user(sqlite_app, "p@clinic.test").phone == "+13105550199"
    assert run("users", "phone", "p@clinic.test", "call me").exit_code != 0
    assert run("users", "phone", "p@clinic.test").exit_code != 0  # neither a number nor --clear
    assert run("users", "phone", "p@clinic.test", "--clear").exit_code == 0
    assert _user(sqlite_app, "p@clinic.test").phone is None
