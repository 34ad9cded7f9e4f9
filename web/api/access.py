"""Who may call: `Authorization: Bearer <key>`, the key's scope, then its rate limit.

Checked in that order, each with its own problem: no or unknown or revoked key 401, a read key
on a write route 403, too many requests 429 with Retry-After.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from staff.api_keys import KeyHolder, Scope, authenticate, touch, touch_due
from storage.db import transaction
from web.api.problems import Problem
from web.api.ratelimit import RateLimiter
from web.services import WebServices

bearer = HTTPBearer(auto_error=False, description="An API key made on the dashboard")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def _holder(request: Request, credentials: HTTPAuthorizationCredentials | None) -> KeyHolder:
    nurture: WebServices = request.app.state.nurture
    refused = Problem(401, "a valid API key is needed", headers={"WWW-Authenticate": "Bearer"})
    if credentials is None:
        raise refused
    now = nurture.clock()
    with nurture.sessions() as session:
        holder = authenticate(session, credentials.credentials)
    if holder is None:
        raise refused
    if touch_due(holder, now):
        with transaction(nurture.sessions) as session:
            touch(session, holder.id, now)
    return holder


def needs(scope: Scope) -> Callable[..., KeyHolder]:
    def check(request: Request, credentials: Credentials) -> KeyHolder:
        holder = _holder(request, credentials)
        if not holder.may(scope):
            raise Problem(403, f"this key's scope is {holder.scope}; this needs {scope}")
        limiter: RateLimiter = request.app.state.api_limiter
        wait = limiter.take(holder.id)
        if wait:
            raise Problem(429, "too many requests for this key", headers={"Retry-After": str(wait)})
        return holder

    return check


Writer = Annotated[KeyHolder, Depends(needs(Scope.WRITE))]
Reader = Annotated[KeyHolder, Depends(needs(Scope.READ))]
