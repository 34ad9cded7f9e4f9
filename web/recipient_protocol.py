"""Tracked-link clicks answered inside uvicorn's HTTP protocol, before any ASGI machinery.

A click needs no awaiting: check the signature, look the message up, queue the click row, 302.
Through ASGI that small piece of work sat under per-request costs larger than itself (a scope
dict, a RequestResponseCycle with its asyncio.Event, an asyncio Task, two `send` coroutines
and their header checks): measured with the bench, 13,300 clicks/s through web.hotpath, 15,800
from here. This protocol is uvicorn's own httptools protocol with one step in front: when the
parser has a complete `GET /l/{token}` whose token is good, it answers from the parser's
callback, through the same `LinkService.follow` as the routes. Everything else, including every
click it cannot answer itself (a bad or expired token, a query string or percent-escapes, a
request pipelined behind an unfinished one), goes on to the ASGI app unchanged, where
web.hotpath and the FastAPI routes answer it as before (the friendly 404 page, for one).

`server_options` tells uvicorn to use it; with a uvicorn lacking the hooks it builds on, it
falls back to plain httptools with a warning.
"""

from __future__ import annotations

import logging
from typing import Any

from web.links import TOKEN_MAX, LinkService

log = logging.getLogger("nurture.web.protocol")

_REDIRECT_HEADERS = (
    b"cache-control: no-store\r\nreferrer-policy: no-referrer\r\ncontent-length: 0\r\n"
)
# What itsdangerous tokens are made of (URL-safe base64 and the separators): a path with
# anything else (`?`, `%`, `/`) is left to the full route, which decodes it properly.
_TOKEN_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")

try:
    from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools missing, or uvicorn reorganised
    HttpToolsProtocol = None  # type: ignore[assignment,misc]
# What it relies on: uvicorn's parser callbacks and per-connection state (a test runs it).
_HOOKS = {
    "__init__": ("pipeline", "cycle", "server_state", "limit_concurrency", "transport"),
    "on_message_begin": ("url", "headers"),
    "on_response_complete": (),
}


class _Answered:
    """Stands in for uvicorn's RequestResponseCycle once the protocol has answered itself:
    the request's remaining body callbacks are ignored, and the next request starts afresh."""

    response_complete = True
    disconnected = False

    class message_event:  # uvicorn calls .set() on it when the connection is lost
        @staticmethod
        def set() -> None:
            pass


ANSWERED = _Answered()


def server_options(app: Any) -> dict[str, Any]:
    """uvicorn.Config keywords: httptools, with clicks answered by RecipientHttpProtocol."""
    links = getattr(getattr(app, "state", None), "links", None)
    if links is None:
        return {"http": "httptools"}
    if HttpToolsProtocol is None or not _has_hooks():
        log.warning("uvicorn's httptools protocol has changed; clicks go through ASGI")
        return {"http": "httptools"}
    return {"http": protocol_for(links)}


def _has_hooks() -> bool:
    for method, names in _HOOKS.items():
        code = getattr(getattr(HttpToolsProtocol, method, None), "__code__", None)
        if code is None or not set(names) <= set(code.co_names):
            return False
    return True


def protocol_for(links: LinkService) -> type[Any]:
    """A protocol class bound to this app's LinkService (uvicorn makes one per connection)."""
    return type("RecipientHttpProtocol", (_RecipientHttpProtocol,), {"links": links})


if HttpToolsProtocol is not None:

    class _RecipientHttpProtocol(HttpToolsProtocol):  # type: ignore[misc,valid-type]
        links: LinkService

        def on_headers_complete(self) -> None:
            if not self._answer_click():
                super().on_headers_complete()

        def _answer_click(self) -> bool:
            url: bytes = self.url
            if (
                not url.startswith(b"/l/")
                or len(url) > TOKEN_MAX + 3
                or not _TOKEN_BYTES.issuperset(url[3:])
                or self.parser.get_method() != b"GET"
                or self.pipeline
                or (self.cycle is not None and not self.cycle.response_complete)
                or self.limit_concurrency is not None
                or self.parser.should_upgrade()
            ):
                return False
            user_agent = ""
            for name, value in self.headers:
                if name == b"user-agent":
                    user_agent = value.decode("latin-1")
                    break
            try:
                location = self.links.follow(url[3:].decode("ascii"), user_agent)
            except Exception:
                log.exception("click failed; answering from the full route")
                return False
            if location is None:
                return False
            # As uvicorn's RequestResponseCycle decides it.
            keep_alive = self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
            head = [STATUS_LINE[302]]
            for name, value in self.server_state.default_headers:  # date (and server)
                head += [name, b": ", value, b"\r\n"]
            head += [b"location: ", location.encode("latin-1"), b"\r\n", _REDIRECT_HEADERS]
            if not keep_alive:
                head.append(b"connection: close\r\n")
            head.append(b"\r\n")
            self.cycle = ANSWERED
            self.transport.write(b"".join(head))
            if not keep_alive:
                self.transport.close()
            self.on_response_complete()  # counts the request, re-arms keep-alive or pipelining
            return True
