"""Sign-in failures do not tell whether an account exists or is locked (OWASP authentication
guidance): one message, and one password verification, for an unknown email, a wrong password
and a locked account."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from nurture.app import NurtureApp
from staff import accounts
from tests.admin.conftest import EDITOR, OWNER, PASSWORD, VIEWER

WRONG = "not the password at all"


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every call of the app's own password check, by the hash it was checked against."""
    calls: list[str] = []
    real = accounts.verify_password

    def counted(password_hash: str, password: str) -> bool:
        calls.append(password_hash)
        return real(password_hash, password)

    monkeypatch.setattr(accounts, "verify_password", counted)
    return calls


def _lock(client: TestClient, login: Callable[..., Any], email: str) -> None:
    for _ in range(accounts.MAX_FAILURES):
        assert login(client, email, password=WRONG).status_code == 401


def test_unknown_wrong_and_locked_answers_are_identical(
    client: TestClient, login: Callable[..., Any], staff_accounts: NurtureApp
) -> None:
    _lock(client, login, VIEWER)
    unknown = login(client, "nobody@clinic.test")
    wrong = login(client, EDITOR, password=WRONG)
    locked_right_password = login(client, VIEWER)
    locked_wrong_password = login(client, VIEWER, password=WRONG)
    answers = [unknown, wrong, locked_right_password, locked_wrong_password]
    assert {response.status_code for response in answers} == {401}
    assert len({response.text for response in answers}) == 1
    assert accounts.SIGN_IN_FAILED in unknown.text
    assert "Too many failed sign-ins" not in unknown.text


@pytest.mark.parametrize("case", ["unknown", "wrong", "locked", "locked-right-password", "ok"])
def test_every_sign_in_verifies_one_password(
    client: TestClient,
    login: Callable[..., Any],
    staff_accounts: NurtureApp,
    verifications: list[str],
    case: str,
) -> None:
    if case.startswith("locked"):
        _lock(client, login, EDITOR)
        verifications.clear()
    email = "nobody@clinic.test" if case == "unknown" else EDITOR
    password = PASSWORD if case in ("ok", "locked-right-password") else WRONG
    response = login(client, email, password=password)
    assert response.status_code == (303 if case == "ok" else 401)
    assert len(verifications) == 1
    with staff_accounts.sessions() as session:
        real_hash = accounts.find_user(session, EDITOR).password_hash
    against_the_real_hash = case in ("wrong", "ok")
    assert (verifications[0] == real_hash) is against_the_real_hash


def test_an_unknown_address_keeps_no_lockout_state(
    client: TestClient, login: Callable[..., Any], staff_accounts: NurtureApp
) -> None:
    """Documented choice: only real accounts lock; guessed addresses are not recorded."""
    for _ in range(accounts.MAX_FAILURES + 1):
        assert login(client, "nobody@clinic.test", password=WRONG).status_code == 401
    with staff_accounts.sessions() as session:
        assert sorted(user.email for user in accounts.list_users(session)) == sorted(
            [EDITOR, OWNER, VIEWER]
        )
        assert all(user.failed_logins == 0 for user in accounts.list_users(session))
