"""The REST API under /api/v1 for the clinic's website, booking system and CRM.

API keys (staff.api_keys) with a scope, per-key rate limits, `Idempotency-Key` on every POST,
and RFC 9457 problem details for every error, answered by this package's routes only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

PREFIX = "/api/v1"


def install(api: FastAPI) -> None:
    """Mount /api/v1 with its own rate limiter and a problem for any unknown /api/v1 path."""
    from fastapi import APIRouter

    from web.api import campaigns, contacts
    from web.api.problems import Problem, ProblemRoute
    from web.api.ratelimit import RateLimiter

    api.state.api_limiter = RateLimiter(api.state.nurture.clock)
    router = APIRouter(prefix=PREFIX, route_class=ProblemRoute)
    router.include_router(contacts.router)
    router.include_router(campaigns.router)

    @router.api_route(
        "/{path:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )
    def unknown(path: str) -> None:
        raise Problem(404, "no such API route")

    api.include_router(router)
