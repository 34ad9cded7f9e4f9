"""The ASGI application: one FastAPI app for recipients, providers and staff.

Errors are mapped to status codes in one place (`_install_error_pages`): a person gets a friendly
page, a provider a short JSON error, nobody a stack trace. The lifespan starts the group-commit
writers (clicks, unsubscribes) and drains them on shutdown, so a clean stop loses nothing.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request as StarletteRequest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import redact
from core.errors import ConfigError, InputError, NotFound, NurtureError
from core.untrusted import whole_number
from web import admin, join, links, metrics, unsubscribe
from web.access_log import AccessLog
from web.admin.session import COOKIE as STAFF_COOKIE
from web.admin.session import may_upload
from web.api import install as install_rest_api
from web.links import LinkService
from web.pages import not_found, page
from web.proxy import trust_proxies
from web.services import WebServices
from web.unsubscribe import UnsubscribeService
from web.webhooks import booking, sendgrid, twilio

log = logging.getLogger("nurture.web")

DESCRIPTION = """Where recipients and providers reach Nurture.

* **Links**: `GET /l/{token}` (tracked booking links), `GET|POST /u/{token}` (unsubscribe,
  RFC 8058 one-click), `GET|POST /p/{token}` (preferences). Tokens are signed and name ids only.
* **Webhooks**: Twilio (`X-Twilio-Signature`), SendGrid Signed Event Webhook (ECDSA), and the
  booking system (`X-Nurture-Signature`, HMAC-SHA256). A request failing its signature check is
  refused with 403 and changes nothing.
"""


class BodySizeLimit:
    """Refuse request bodies over the limit before reading them (413), declared or streamed.

    Staff CSV uploads get their own, larger limit, and only once the session cookie is verified
    (signature, live session row, a role allowed to upload: web.admin.session.may_upload)
    before a byte of the body is read. A forged or stale cookie, or a viewer's, keeps the small
    limit, so nobody without an editor's session can make the server take in a large body
    (OWASP: authenticate before accepting large input).
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, upload_path: str = "", max_upload_bytes: int = 0
    ) -> None:
        self.app, self.max_bytes = app, max_bytes
        self.upload_path, self.max_upload_bytes = upload_path, max_upload_bytes

    async def _limit(self, scope: Scope, headers: dict[bytes, bytes]) -> int:
        if (
            self.max_upload_bytes > self.max_bytes
            and scope.get("method") == "POST"
            and scope.get("path") == self.upload_path
            and f"{STAFF_COOKIE}=".encode() in headers.get(b"cookie", b"")
            and await run_in_threadpool(may_upload, StarletteRequest(scope))
        ):  # the session check reads the database: only for an upload with a staff cookie
            return self.max_upload_bytes
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        limit = await self._limit(scope, headers)
        declared = headers.get(b"content-length")
        if declared is not None and _declared_size(declared) > limit:
            await PlainTextResponse("Request too large\n", status_code=413)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await PlainTextResponse("Request too large\n", status_code=413)(scope, receive, send)


class _TooLarge(Exception):
    pass


def _declared_size(value: bytes) -> int:
    """The Content-Length as a number; one too long to read is taken as too large, one that is
    not a number as 0 (the body is then counted as it streams)."""
    if len(value.strip()) > 18:
        return 1 << 62
    return whole_number(value.strip(), max_digits=18) or 0


def create_app(nurture: WebServices) -> FastAPI:
    redact.install()
    link_service, unsubscribes = LinkService(nurture), UnsubscribeService(nurture)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        link_service.recorder.start()
        unsubscribes.writer.start()
        # Everything imported and built so far lives as long as the process; moved out of the
        # collector's reach, a full collection under load takes a few ms instead of ~80 ms
        # (it walked every FastAPI, pydantic and SQLAlchemy object: the click path's p99).
        gc.freeze()
        try:
            yield
        finally:
            unsubscribes.writer.stop()
            link_service.recorder.stop()

    api = FastAPI(
        title="Nurture",
        version="1",
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        # FastAPI's native OpenTelemetry looks for configured providers on every request (three
        # lookups through os.environ: ~9 µs a click); Nurture configures none.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    api.state.nurture = nurture
    api.state.links = link_service
    api.state.unsubscribes = unsubscribes
    api.state.sendgrid_verifier = sendgrid.SendGridVerifier(
        nurture.settings.secrets.sendgrid_webhook_public_key
    )
    links.install(api)
    unsubscribe.install(api)
    join.install(api)  # /join: the sign-up form, double opt-in (web.join)
    api.include_router(twilio.router)
    api.include_router(sendgrid.router)
    api.include_router(booking.router)
    metrics.install(api, nurture)  # /metrics: staff or NURTURE_METRICS_TOKEN
    admin.install(api)  # the staff dashboard under /admin
    install_rest_api(api)  # the REST API under /api/v1

    @api.get("/healthz", tags=["health"], summary="Liveness and database check")
    def healthz() -> dict[str, str]:
        from sqlalchemy import text

        with nurture.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return {"status": "ok"}

    _install_error_pages(api)
    api.add_middleware(AccessLog)
    api.add_middleware(
        BodySizeLimit,
        max_bytes=nurture.settings.web.max_body_bytes,
        upload_path="/admin/imports",
        max_upload_bytes=nurture.settings.web.max_upload_bytes,
    )
    trust_proxies(api, nurture.settings.web.trusted_proxies)
    return api


def _wants_html(request: Request) -> bool:
    return request.method in ("GET", "HEAD") and "text/html" in request.headers.get("accept", "")


def _install_error_pages(api: FastAPI) -> None:
    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and (_wants_html(request) or _recipient_path(request)):
            return not_found(request)
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @api.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        if _recipient_path(request):
            return not_found(request)
        return JSONResponse({"error": "invalid request"}, status_code=422)

    @api.exception_handler(NurtureError)
    async def nurture_error(request: Request, exc: NurtureError) -> Response:
        status = 400 if isinstance(exc, InputError) else 404 if isinstance(exc, NotFound) else 500
        if isinstance(exc, ConfigError):
            status = 503
        log.warning("%s on %s: %s", type(exc).__name__, request.url.path, exc)
        if _recipient_path(request) and status == 404:
            return not_found(request)
        return JSONResponse({"error": type(exc).__name__}, status_code=status)

    @api.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        if _wants_html(request) or _recipient_path(request):
            return page(request, "error.html", status_code=500)
        return PlainTextResponse("Something went wrong on our side.\n", status_code=500)


def _recipient_path(request: Request) -> bool:
    return request.url.path.startswith(("/l/", "/u/", "/p/"))
