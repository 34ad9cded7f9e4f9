"""RFC 9457 problem details for every /api/v1 error, and only there.

The app's own error handlers (web.app) answer the other routes in their formats; this module's
route class catches errors of /api/v1 routes before those handlers see them, so the two never
meet: authentication, scope, validation, our typed errors and crashes all become
`application/problem+json` with type, title, status and detail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from contacts.intake import IntakeConflict
from core.errors import InputError, NotFound, NurtureError

log = logging.getLogger("nurture.web.api")
MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://nurture.invalid/problems/"  # a stable name per kind, not a page to fetch

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
}
KINDS = {
    400: "bad-request",
    401: "unauthorized",
    403: "wrong-scope",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    422: "invalid-request",
    429: "rate-limited",
    500: "server-error",
}


class ProblemDetail(BaseModel):
    """RFC 9457 section 3: what went wrong, for a machine (type, status) and a person (detail)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


class Problem(Exception):
    """An /api/v1 error with its status; `headers` carry e.g. Retry-After or WWW-Authenticate."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail
        self.headers = headers or {}
        self.kind = kind or KINDS.get(status, "error")


def problem_response(problem: Problem, errors: list[dict[str, Any]] | None = None) -> Response:
    body = ProblemDetail(
        type=TYPE_BASE + problem.kind,
        title=TITLES.get(problem.status, "Error"),
        status=problem.status,
        detail=problem.detail,
        errors=errors,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=problem.status,
        headers=problem.headers,
        media_type=MEDIA_TYPE,
    )


def as_problem(exc: Exception) -> tuple[Problem, list[dict[str, Any]] | None]:
    """The one mapping from an error to its problem (the API's counterpart of web.app's)."""
    if isinstance(exc, Problem):
        return exc, None
    if isinstance(exc, RequestValidationError):
        errors = [
            {"loc": list(error.get("loc", ())), "msg": str(error.get("msg", ""))}
            for error in exc.errors()
        ]  # no "input": it may hold an address we must not echo into logs or proxies
        return Problem(422, "the request does not match the schema"), errors
    if isinstance(exc, HTTPException):
        return Problem(exc.status_code, str(exc.detail), headers=dict(exc.headers or {})), None
    if isinstance(exc, IntakeConflict):
        return Problem(409, str(exc)), None
    if isinstance(exc, NotFound):
        return Problem(404, str(exc)), None
    if isinstance(exc, InputError):
        return Problem(422, str(exc)), None
    if isinstance(exc, NurtureError):
        log.warning("%s on the API: %s", type(exc).__name__, exc)
        return Problem(500, "the request could not be completed"), None
    log.error("unhandled error on the API", exc_info=exc)
    return Problem(500, "something went wrong on our side"), None


class ProblemRoute(APIRoute):
    """An APIRoute whose every error, from dependencies, validation or the endpoint, is a problem
    (FastAPI's documented way to customise one router's handling: a custom route class)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                problem, errors = as_problem(exc)
                return problem_response(problem, errors)

        return answer


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the problems a route may answer."""
    return {
        status: {
            "model": ProblemDetail,
            "description": TITLES[status],
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}},
        }
        for status in statuses
    }
