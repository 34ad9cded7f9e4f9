"""`Idempotency-Key` on every POST (draft-ietf-httpapi-idempotency-key-header).

The first request with a key does its work and stores its response in the same transaction,
so a change and its record commit together or not at all; a request that fails stores nothing
and may be retried with the same key. The same key again within `KEEP_FOR`:
* with the same request (method, path, and body as validated, so key order and spacing do not
  matter) answers the stored response and changes nothing (`Idempotent-Replayed: true`);
* with a different request is refused (422): the client reused a key by mistake.
Two copies racing each other meet at the unique (key, idempotency key) index: the loser's
transaction rolls back and it answers the winner's stored response.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.db import transaction
from storage.models import IdempotentRequest
from web.api.problems import Problem
from web.services import WebServices

HEADER = "Idempotency-Key"
KEEP_FOR = timedelta(hours=24)
MAX_KEY = 255

Work = Callable[[Session], tuple[int, dict[str, Any]]]


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    replayed: bool = False


def request_hash(method: str, path: str, body: Any) -> str:
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not key or len(key) > MAX_KEY or not key.isprintable():
        raise Problem(422, f"{HEADER} must be 1 to {MAX_KEY} printable characters")
    return key


def run_once(
    nurture: WebServices, key_id: int, key: str | None, fingerprint: str, work: Work
) -> Answer:
    """Do `work` once per (API key, idempotency key), or answer what it answered before.

    A racing request can commit the same row between this one's read and its write (the same
    idempotency key, or a new contact's address): the unique constraint refuses the second, and
    running it again finds the first's row, replayed or updated, instead of a 500."""
    try:
        return _run(nurture, key_id, key, fingerprint, work)
    except IntegrityError:
        return _run(nurture, key_id, key, fingerprint, work)


def _run(
    nurture: WebServices, key_id: int, key: str | None, fingerprint: str, work: Work
) -> Answer:
    now = nurture.clock()
    with transaction(nurture.sessions) as session:
        if key is not None:
            session.execute(
                delete(IdempotentRequest).where(
                    IdempotentRequest.api_key_id == key_id,
                    IdempotentRequest.created_at <= now - KEEP_FOR,
                )
            )
            stored = session.scalar(
                select(IdempotentRequest).where(
                    IdempotentRequest.api_key_id == key_id,
                    IdempotentRequest.idempotency_key == key,
                )
            )
            if stored is not None:
                if stored.request_hash != fingerprint:
                    raise Problem(
                        422,
                        f"this {HEADER} was used with a different request",
                        kind="idempotency-key-reused",
                    )
                return Answer(stored.status, dict(stored.response_body), replayed=True)
        status, body = work(session)
        if key is not None:
            session.add(
                IdempotentRequest(
                    api_key_id=key_id,
                    idempotency_key=key,
                    request_hash=fingerprint,
                    status=status,
                    response_body=body,
                    created_at=now,
                )
            )
            session.flush()
        return Answer(status, body)
