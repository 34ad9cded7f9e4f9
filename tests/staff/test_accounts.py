"""Staff accounts without the web: argon2id hashes, password rules, lockout on the app clock."""

from __future__ import annotations

import pytest

from core.clock import FrozenClock
from core.errors import InputError, NotFound
from nurture.app import NurtureApp
from staff import accounts
from storage.db import transaction
from storage.models import StaffUser

EDITOR, PASSWORD = "editor@clinic.test", "correct horse battery staple"


@pytest.fixture
def staff_app(sqlite_app: NurtureApp) -> NurtureApp:
    with transaction(sqlite_app.sessions) as session:
        accounts.add_user(session, EDITOR, PASSWORD, "editor")
    return sqlite_app


def _login(app: NurtureApp, clock: FrozenClock, password: str) -> accounts.LoginOutcome:
    with transaction(app.sessions) as session:
        return accounts.authenticate(session, EDITOR, password, now=clock())


def test_passwords_are_stored_as_argon2id(staff_app: NurtureApp) -> None:
    with staff_app.sessions() as session:
        stored = session.query(StaffUser).filter_by(email=EDITOR).one().password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


@pytest.mark.parametrize("bad", ["short", " leading space pass", "no-at-sign"])
def test_weak_passwords_and_bad_logins_are_refused(staff_app: NurtureApp, bad: str) -> None:
    with pytest.raises(InputError), transaction(staff_app.sessions) as session:
        if bad == "no-at-sign":
            accounts.add_user(session, bad, PASSWORD, "viewer")
        else:
            accounts.add_user(session, "new@clinic.test", bad, "viewer")


def test_unknown_roles_and_accounts_are_refused(staff_app: NurtureApp) -> None:
    with pytest.raises(ValueError), transaction(staff_app.sessions) as session:
        accounts.add_user(session, "new@clinic.test", PASSWORD, "admin")
    with pytest.raises(NotFound), transaction(staff_app.sessions) as session:
        accounts.set_role(session, "nobody@clinic.test", "viewer")


def test_unknown_email_and_wrong_password_look_the_same(
    staff_app: NurtureApp, frozen_clock: FrozenClock
) -> None:
    with transaction(staff_app.sessions) as session:
        unknown = accounts.authenticate(session, "who@clinic.test", PASSWORD, now=frozen_clock())
        wrong = accounts.authenticate(session, EDITOR, "not the password!", now=frozen_clock())
    assert unknown == wrong == accounts.LoginOutcome(None)


def test_five_failures_lock_until_the_lockout_ends(
    staff_app: NurtureApp, frozen_clock: FrozenClock
) -> None:
    for _ in range(accounts.MAX_FAILURES - 1):
        assert _login(staff_app, frozen_clock, "guess-guess-guess") == accounts.LoginOutcome(None)
    assert _login(staff_app, frozen_clock, "guess-guess-guess").locked
    assert _login(staff_app, frozen_clock, PASSWORD).locked  # even the right password
    frozen_clock.advance(minutes=14)
    assert _login(staff_app, frozen_clock, PASSWORD).user is None
    frozen_clock.advance(minutes=2)
    assert _login(staff_app, frozen_clock, PASSWORD).user is not None
    with staff_app.sessions() as session:
        user = accounts.find_user(session, EDITOR)
        assert user is not None and user.failed_logins == 0 and user.locked_until is None


def test_an_expired_lock_counts_failures_afresh(
    staff_app: NurtureApp, frozen_clock: FrozenClock
) -> None:
    for _ in range(accounts.MAX_FAILURES):
        _login(staff_app, frozen_clock, "guess-guess-guess")
    frozen_clock.advance(minutes=16)
    assert not _login(staff_app, frozen_clock, "guess-guess-guess").locked
    with staff_app.sessions() as session:
        user = accounts.find_user(session, EDITOR)
        assert user is not None and user.failed_logins == 1 and user.locked_until is None


def test_a_new_password_lifts_the_lock_and_changes_the_fingerprint(
    staff_app: NurtureApp, frozen_clock: FrozenClock
) -> None:
    for _ in range(accounts.MAX_FAILURES):
        _login(staff_app, frozen_clock, "guess-guess-guess")
    with transaction(staff_app.sessions) as session:
        before = accounts.password_fingerprint(accounts.find_user(session, EDITOR).password_hash)
        user = accounts.set_password(session, EDITOR, "a brand new passphrase")
        assert accounts.password_fingerprint(user.password_hash) != before
    assert _login(staff_app, frozen_clock, "a brand new passphrase").user is not None
