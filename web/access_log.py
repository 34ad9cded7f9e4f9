"""One structured log line per request, and the headers every page we serve should carry.

Tokens in /l, /u and /p paths are bearer credentials (whoever holds one can unsubscribe that
person), so they are never logged; addresses are masked by core.redact's filter anyway.
Pages carry `Referrer-Policy: no-referrer` so a token in the address bar does not leak to the
clinic's website when a recipient follows a link from the page, and refuse framing
(clickjacking an unsubscribe button).
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("nurture.web.access")

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
_TOKEN_PREFIXES = ("/l/", "/u/", "/p/")


def loggable_path(path: str) -> str:
    for prefix in _TOKEN_PREFIXES:
        if path.startswith(prefix):
            return prefix + "…"
    return path[:200]


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [pair for pair in SECURITY_HEADERS if pair[0] not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            client = scope.get("client")
            log.info(
                "request method=%s path=%s status=%s ms=%.1f client=%s",
                scope["method"],
                loggable_path(scope["path"]),
                status,
                (time.perf_counter() - started) * 1000,
                client[0] if client else "-",
            )
