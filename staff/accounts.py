"""Staff accounts: argon2id password hashes, roles, and lockout after repeated failures.

OWASP's authentication guidance: hash with a memory-hard function (argon2id, argon2-cffi's
defaults follow RFC 9106), lock an account for a while after a few failures so a password cannot
be guessed online, and never let a sign-in answer tell whether an account exists: an unknown
email, a wrong password and a locked account get the same answer (`SIGN_IN_FAILED`) at the same
cost, one password verification each (against a dummy hash when there is no usable account).

Lockout and unknown addresses: only real accounts count failures and lock. An unknown address
keeps no counter (there is no account to guess into, and recording guessed addresses would be a
table an attacker fills); since every failure reads and costs the same, a locked account and an
unknown address cannot be told apart from outside.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import InputError, NotFound
from core.redact import mask_email
from staff.roles import Role
from storage.models import StaffUser

log = logging.getLogger("nurture.staff")

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 12
#: The one answer to every failed sign-in (unknown email, wrong password, locked account).
SIGN_IN_FAILED = (
    f"Wrong email or password. After {MAX_FAILURES} failed attempts an account is locked for "
    f"{int(LOCKOUT.total_seconds() // 60)} minutes; an editor can unlock it sooner."
)

hasher = PasswordHasher()


def normalise_staff_email(email: str) -> str:
    text = email.strip().lower()
    local, at, domain = text.rpartition("@")
    if not at or not local or "." not in domain or " " in text:
        raise InputError("a staff login must be an email address")
    return text


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(f"passwords need at least {MIN_PASSWORD_LENGTH} characters")
    if password.strip() != password:
        raise InputError("a password may not start or end with spaces")


def password_fingerprint(password_hash: str) -> str:
    """Goes into the session cookie: a password change or account removal ends every session."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def find_user(session: Session, email: str) -> StaffUser | None:
    return session.scalar(select(StaffUser).where(StaffUser.email == email.strip().lower()))


def add_user(session: Session, email: str, password: str, role: Role | str) -> StaffUser:
    address = normalise_staff_email(email)
    check_password_strength(password)
    if find_user(session, address) is not None:
        raise InputError(f"a staff account for {mask_email(address)} already exists")
    user = StaffUser(email=address, password_hash=hasher.hash(password), role=str(Role(role)))
    session.add(user)
    session.flush()
    log.info("staff account %s added as %s", mask_email(address), user.role)
    return user


def set_password(session: Session, email: str, password: str) -> StaffUser:
    user = _existing(session, email)
    check_password_strength(password)
    user.password_hash = hasher.hash(password)
    user.failed_logins, user.locked_until = 0, None
    return user


def set_role(session: Session, email: str, role: Role | str) -> StaffUser:
    user = _existing(session, email)
    user.role = str(Role(role))
    return user


def set_phone(session: Session, email: str, phone: str | None) -> StaffUser:
    """The account's own mobile number (E.164, normalised by the caller), where the editor's
    test texts go; None removes it. Set from `nurture users phone`, never from the editor's page:
    a number typed there could be anyone's."""
    user = _existing(session, email)
    user.phone = phone
    return user


def unlock(session: Session, email: str) -> StaffUser:
    user = _existing(session, email)
    user.failed_logins, user.locked_until = 0, None
    return user


def remove_user(session: Session, email: str) -> None:
    session.delete(_existing(session, email))


def list_users(session: Session) -> list[StaffUser]:
    return list(session.scalars(select(StaffUser).order_by(func.lower(StaffUser.email))))


def _existing(session: Session, email: str) -> StaffUser:
    user = find_user(session, email)
    if user is None:
        raise NotFound(f"no staff account for {mask_email(email)}")
    return user


@dataclass(frozen=True)
class LoginOutcome:
    user: StaffUser | None
    locked: bool = False


def authenticate(session: Session, email: str, password: str, *, now: datetime) -> LoginOutcome:
    """Check a login in the caller's (write) transaction, counting failures and locking.

    Every path verifies one password (see the module docstring). A locked account refuses even
    the right password until the lock ends, or a guesser could keep trying and learn the answer
    from the one success.
    """
    user = find_user(session, email)
    if user is None:
        verify_password(_dummy_hash(), password)
        log.info("failed staff login for unknown account %s", mask_email(email))
        return LoginOutcome(None)
    if user.locked_until is not None and user.locked_until > now:
        verify_password(_dummy_hash(), password)
        log.warning("login refused: %s is locked", mask_email(user.email))
        return LoginOutcome(None, locked=True)
    if not verify_password(user.password_hash, password):
        if user.locked_until is not None:  # an expired lock: start counting afresh
            user.failed_logins, user.locked_until = 0, None
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILURES:
            user.locked_until = now + LOCKOUT
            log.warning(
                "%s locked for %s after %d failed logins",
                mask_email(user.email),
                LOCKOUT,
                user.failed_logins,
            )
            return LoginOutcome(None, locked=True)
        log.info("failed staff login for %s", mask_email(user.email))
        return LoginOutcome(None)
    user.failed_logins, user.locked_until = 0, None
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    log.info("staff login: %s", mask_email(user.email))
    return LoginOutcome(user)


def verify_password(password_hash: str, password: str) -> bool:
    """The one place a password is checked against a hash (argon2id)."""
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _dummy_hash() -> str:
    return _dummy_hash_of(hasher)


@cache
def _dummy_hash_of(current: PasswordHasher) -> str:
    """A hash at the hasher's own cost, verified when there is no usable account so that answer
    costs what a wrong password costs. Made on first use, not at import, so that commands that
    never sign anyone in do not pay for it."""
    return current.hash("not a real password, only here to spend the same time")
