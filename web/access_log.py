"""One structured log line per request, and the headers every page we serve should carry.

Tokens in /l, /u and /p paths are bearer credentials (whoever holds one can unsubscribe that
person), so they are never logged; addresses are masked by core.redact's filter anyway.
Pages carry `Referrer-Policy: no-referrer` so a token in the address bar does not leak to the
clinic's website when a recipient follows a link from the page, and refuse framing
(clickjacking an unsubscribe button), unless a page names who may frame it in its own CSP.

The lines go out through `BufferedLines`, which writes them a batch at a time: one `write` to the
stream per request cost more CPU than the click it logged (the bench's profile: a fifth of a
click's time in the server, most of it that system call).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TextIO

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("nurture.web.access")

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
_TOKEN_PREFIXES = ("/l/", "/u/", "/p/")


def _allows_some_framing(message: Message) -> bool:
    """A page that says who may frame it (web.join's embeddable form) gets no DENY on top: an
    X-Frame-Options DENY beside CSP frame-ancestors is a contradiction browsers resolve for
    the CSP (CSP Level 2, 7.7.1), but older ones do not."""
    return any(
        name.lower() == b"content-security-policy"
        and b"frame-ancestors" in value
        and b"frame-ancestors 'none'" not in value
        for name, value in message.get("headers", [])
    )


def loggable_path(path: str) -> str:
    for prefix in _TOKEN_PREFIXES:
        if path.startswith(prefix):
            return prefix + "…"
    return path[:200]


class BufferedLines(logging.StreamHandler):
    """A StreamHandler that writes its formatted lines in batches, at most `interval` late.

    A line is formatted (and filtered: core.redact) when it is logged, and written with the
    others queued by then when the buffer holds `max_lines`, when a WARNING or worse arrives,
    on `flush()` (logging.shutdown at exit) or `interval` after the first line queued, by one
    daemon thread. A process killed with SIGKILL can lose `interval` of lines; a clean stop
    loses none.
    """

    def __init__(
        self, stream: TextIO | None = None, *, interval: float = 0.25, max_lines: int = 256
    ) -> None:
        super().__init__(stream)
        self.interval, self.max_lines = interval, max_lines
        self._lines: list[str] = []
        self._due = threading.Event()
        self._flusher: threading.Thread | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        # Handler.handle holds self.lock around emit, and flush takes it too.
        self._lines.append(line)
        if len(self._lines) >= self.max_lines or record.levelno >= logging.WARNING:
            self.flush()
        elif len(self._lines) == 1:
            if self._flusher is None:
                self._flusher = threading.Thread(
                    target=self._flush_later, name="access-log", daemon=True
                )
                self._flusher.start()
            self._due.set()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            if self._lines:
                try:
                    self.stream.write("\n".join(self._lines) + "\n")
                except Exception:
                    self._lines.clear()
                    raise
                self._lines.clear()
            super().flush()

    def _flush_later(self) -> None:
        while True:
            self._due.wait()
            time.sleep(self.interval)
            self._due.clear()
            try:
                self.flush()
            except Exception:  # a closed or broken stream: logging's own rule, never raise
                pass


class SecondsCachedFormatter(logging.Formatter):
    """`logging.Formatter` with the default time format, rendering each second once (the
    strftime a line cost, for the thousands of lines a second a busy server logs)."""

    _second: int = -1
    _rendered: str = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            self._rendered = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        if self.default_msec_format is None:
            return self._rendered
        return self.default_msec_format % (self._rendered, record.msecs)


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
                if b"content-security-policy" in present and _allows_some_framing(message):
                    present.add(b"x-frame-options")  # the page's own framing rule stands
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
