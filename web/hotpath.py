"""The two requests that come in floods, served in plain ASGI before FastAPI sees them.

A big send produces bursts of booking-link clicks and RFC 8058 one-click unsubscribes (mailbox
providers POST those on the user's behalf). FastAPI's per-request machinery (routing, dependency
injection, validation) costs several times the work itself, so the *successful* case of
`GET /l/{token}` and of a one-click `POST /u/{token}` is answered here, through the same
LinkService and UnsubscribeService the FastAPI routes use. Anything else (a bad token, a form
POST, a HEAD) falls through to the FastAPI routes, which own the pages and the error answers.
Under `nurture web`, a good click is answered one level lower still, in uvicorn's protocol
(web.recipient_protocol); this path answers clicks under any other server or test client.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from web.links import LinkService
from web.unsubscribe import ONE_CLICK_BODY, UnsubscribeService

log = logging.getLogger("nurture.web.hotpath")

_BODY_PEEK = 4096  # a one-click body is 26 bytes; anything bigger goes to FastAPI
_NO_STORE = (b"cache-control", b"no-store")
_REDIRECT_HEADERS = [_NO_STORE, (b"referrer-policy", b"no-referrer"), (b"content-length", b"0")]
_DONE = b"Unsubscribed.\n"
_DONE_HEADERS = [
    _NO_STORE,
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", str(len(_DONE)).encode()),
]


class RecipientFastPath:
    def __init__(self, app: ASGIApp, links: LinkService, unsubscribes: UnsubscribeService) -> None:
        self.app, self.links, self.unsubscribes = app, links, unsubscribes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            method: str = scope["method"]
            if method == "GET" and path.startswith("/l/"):
                if await self._click(scope, send, path[3:]):
                    return
            elif method == "POST" and path.startswith("/u/"):
                receive = await self._one_click(scope, receive, send, path[3:])
                if receive is None:
                    return
        await self.app(scope, receive, send)

    async def _click(self, scope: Scope, send: Send, token: str) -> bool:
        if "/" in token:
            return False
        try:
            location = self.links.follow(token, _header(scope, b"user-agent"))
        except Exception:
            log.exception("click failed; answering from the full route")
            return False
        if location is None:
            return False
        headers = [(b"location", location.encode("latin-1")), *_REDIRECT_HEADERS]
        await send({"type": "http.response.start", "status": 302, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return True

    async def _one_click(
        self, scope: Scope, receive: Receive, send: Send, token: str
    ) -> Receive | None:
        """Answer a one-click unsubscribe, or hand back a `receive` that replays the body."""
        messages: list[Message] = []
        size = 0
        while size <= _BODY_PEEK:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        replay = _replaying(messages, receive)
        if size > _BODY_PEEK or messages[-1].get("more_body", False):
            return replay
        body = b"".join(message.get("body", b"") for message in messages)
        parsed = self.unsubscribes.read(token) if body.strip() == ONE_CLICK_BODY else None
        if parsed is None:
            return replay
        try:
            await self.unsubscribes.unsubscribe(parsed, "one-click")
        except Exception:
            log.exception("one-click unsubscribe could not be committed")
            return replay  # the full route tries again and answers an error page if it fails
        await send({"type": "http.response.start", "status": 200, "headers": _DONE_HEADERS})
        await send({"type": "http.response.body", "body": _DONE})
        return None


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return ""


def _replaying(messages: list[Message], receive: Receive) -> Callable[[], Awaitable[Message]]:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
