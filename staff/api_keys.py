"""API keys for /api/v1: made by editors on the dashboard, shown once, stored as a hash.

A key is `nk_` and 43 characters of `secrets.token_urlsafe(32)` (256 random bits). Only its
SHA-256 is stored: with that much entropy no guess or precomputed table reaches a key, so a
slow password hash (argon2, for secrets people choose) would buy nothing and would cost every
API request tens of milliseconds; a plain digest is found by the unique index on `key_hash`.

`last_used_at` is written at most once a minute per key (`TOUCH_EVERY`), so a busy client does
not turn every read into a write.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from core.errors import InputError, NotFound
from storage.models import ApiKey

PREFIX = "nk_"
TOUCH_EVERY = timedelta(minutes=1)
MAX_NAME = 100


class Scope(enum.StrEnum):
    WRITE = "write"  # may also read
    READ = "read"


@dataclass(frozen=True)
class NewKey:
    """A key just made: `secret` is shown to the editor once and never stored."""

    id: int
    name: str
    scope: str
    secret: str


@dataclass(frozen=True)
class KeyHolder:
    """Who is calling: what a request may do, without the key or its hash."""

    id: int
    name: str
    scope: str
    last_used_at: datetime | None = None

    def may(self, scope: Scope) -> bool:
        return self.scope == Scope.WRITE or scope == Scope.READ


def key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(session: Session, *, name: str, scope: str, created_by: str, at: datetime) -> NewKey:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise InputError(f"give the key a name of 1 to {MAX_NAME} characters")
    if scope not in set(Scope):
        raise InputError("the scope is write or read")
    secret = PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        name=name,
        scope=scope,
        key_hash=key_hash(secret),
        key_prefix=secret[:10],
        created_by=created_by,
        created_at=at,
    )
    session.add(row)
    session.flush()
    return NewKey(row.id, name, scope, secret)


def revoke_key(session: Session, key_id: int, *, at: datetime) -> bool:
    """Revoke a key; False when it was already revoked. Its next request is refused."""
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound(f"no API key {key_id}")
    if row.revoked_at is not None:
        return False
    row.revoked_at = at
    return True


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.revoked_at.is_not(None), ApiKey.id)))


def authenticate(session: Session, secret: str) -> KeyHolder | None:
    """The live key with this secret, or None (unknown, malformed or revoked). Reads only."""
    if not secret.startswith(PREFIX) or len(secret) > 100:
        return None
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash(secret)))
    if row is None or row.revoked_at is not None:
        return None
    return KeyHolder(row.id, row.name, row.scope, row.last_used_at)


def touch_due(holder: KeyHolder, at: datetime) -> bool:
    """Whether this use should be written down (at most once per TOUCH_EVERY per key)."""
    return holder.last_used_at is None or at - holder.last_used_at >= TOUCH_EVERY


def touch(session: Session, key_id: int, at: datetime) -> None:
    """Note a use; conditional, so processes racing past `touch_due` still write once."""
    session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= at - TOUCH_EVERY),
        )
        .values(last_used_at=at)
    )
