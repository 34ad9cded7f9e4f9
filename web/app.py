"""The ASGI application: one FastAPI app for recipients, providers and staff."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from nurture.app import NurtureApp
from web import links, unsubscribe

log = logging.getLogger("nurture.web")


class BodySizeLimit:
    """Refuse request bodies over the limit before reading them (413), declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await PlainTextResponse("Request too large\n", status_code=413)(scope, receive, send)
            return
        seen = 0

        async def limited() -> dict:  # type: ignore[type-arg]
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await PlainTextResponse("Request too large\n", status_code=413)(scope, receive, send)


class _TooLarge(Exception):
    pass


def create_app(nurture: NurtureApp) -> FastAPI:
    api = FastAPI(
        title="Nurture",
        version="1",
        description="Tracked links, unsubscribe and preferences, and provider webhooks.",
        docs_url=None,
        redoc_url=None,
    )
    api.state.nurture = nurture
    api.include_router(links.router)
    api.include_router(unsubscribe.router)

    @api.get("/healthz", tags=["health"], summary="Liveness and database check")
    def healthz() -> dict[str, str]:
        from sqlalchemy import text

        with nurture.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return {"status": "ok"}

    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    @api.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        return JSONResponse({"error": "invalid request"}, status_code=422)

    @api.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return PlainTextResponse("Something went wrong on our side.\n", status_code=500)

    api.add_middleware(BodySizeLimit, max_bytes=nurture.settings.web.max_body_bytes)  # type: ignore[arg-type]
    return api
