"""A loopback fake of the two provider endpoints we call, for tests and the dispatch benchmark.

Prism (shared/providers/mock-providers) checks payloads against the official specs but answers
at about 1k requests/s and cannot produce the errors that matter (429, 5xx, Twilio 21610 or
21211). This fake answers as fast as aiohttp can, records what it received (our message id,
taken from SendGrid custom_args or the Twilio StatusCallback), and can be told to fail, stall or
answer slowly. Like MemoryChannel, it ships beside the real channels (procrastinate does the same).
It also answers Twilio's Messages list (GET, filtered by To and DateSent) from what it accepted,
timed by `clock` (tests hand in their app's frozen clock), or fails it with `list_error`.

    python -m providers.fakeserver --port 0 [--delay 0.05] [--count-only]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from urllib.parse import parse_qs, urlsplit

from aiohttp import web

from core.clock import Clock, utcnow

#: (kind "email"|"sms", our message id, recipient, how many times this id was seen) -> an
#: answer (status, JSON body) to fail with, or None to accept.
Rule = Callable[[str, int, str, int], tuple[int, dict[str, object]] | None]


@dataclass
class Received:
    kind: str
    message_id: int
    to: str
    at: datetime | None = None
    sender: str = ""


@dataclass
class FakeProviders:
    delay: float = 0.0
    rule: Rule | None = None
    count_only: bool = False
    received: list[Received] = field(default_factory=list)
    count: int = 0
    #: Called (in the server thread) for each request before it is answered.
    on_request: Callable[[Received], None] | None = None
    #: When accepted texts were created, for the Messages list.
    clock: Clock = utcnow
    #: An answer (status, JSON body) the Messages list fails with, when set.
    list_error: tuple[int, dict[str, object]] | None = None
    _seen: dict[tuple[str, int], int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v3/mail/send", self._sendgrid)
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._twilio)
        app.router.add_get("/2010-04-01/Accounts/{sid}/Messages.json", self._twilio_list)
        return app

    def ids(self, kind: str | None = None) -> list[int]:
        with self._lock:
            return [item.message_id for item in self.received if kind in (None, item.kind)]

    def _note(
        self, kind: str, message_id: int, to: str, sender: str = ""
    ) -> tuple[int, dict[str, object]] | None:
        item = Received(kind, message_id, to, self.clock(), sender)
        with self._lock:
            seen = self._seen.get((kind, message_id), 0) + 1
            self._seen[(kind, message_id)] = seen
        if self.on_request is not None:
            self.on_request(item)
        answer = self.rule(kind, message_id, to, seen) if self.rule else None
        if answer is None:
            with self._lock:
                self.received.append(item)
        return answer

    async def _sendgrid(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.delay:
            await asyncio.sleep(self.delay)
        self.count += 1
        if self.count_only:
            return web.Response(status=202, headers={"X-Message-Id": f"fake{self.count}"})
        mail = json.loads(body)
        to = mail["personalizations"][0]["to"][0]["email"]
        args = {**mail.get("custom_args", {}), **mail["personalizations"][0].get("custom_args", {})}
        message_id = int(args.get("nurture_message_id", 0))
        answer = await asyncio.to_thread(self._note, "email", message_id, to)
        if answer is not None:
            status, payload = answer
            return web.json_response(payload, status=status)
        return web.Response(status=202, headers={"X-Message-Id": f"sg-{message_id}"})

    async def _twilio(self, request: web.Request) -> web.Response:
        form = await request.post()
        if self.delay:
            await asyncio.sleep(self.delay)
        self.count += 1
        if self.count_only:
            return web.json_response(
                {"sid": f"SM{self.count:032d}", "status": "queued"}, status=201
            )
        callback = str(form.get("StatusCallback", ""))
        message_id = int(parse_qs(urlsplit(callback).query).get("m", ["0"])[0])
        to = str(form.get("To", ""))
        sender = str(form.get("MessagingServiceSid") or form.get("From") or "")
        answer = await asyncio.to_thread(self._note, "sms", message_id, to, sender)
        if answer is not None:
            status, payload = answer
            return web.json_response(payload, status=status)
        return web.json_response({"sid": f"SM{message_id:032d}", "status": "queued"}, status=201)

    async def _twilio_list(self, request: web.Request) -> web.Response:
        if self.list_error is not None:
            status, payload = self.list_error
            return web.json_response(payload, status=status)
        query = request.query
        after, before = query.get("DateSent>"), query.get("DateSent<")
        with self._lock:
            texts = [item for item in self.received if item.kind == "sms" and item.at]
        listed = [
            _listed(item)
            for item in reversed(texts)  # newest first, as Twilio lists them
            if item.to == query.get("To", item.to)
            and (not after or (item.at and item.at >= datetime.fromisoformat(after)))
            and (not before or (item.at and item.at <= datetime.fromisoformat(before)))
        ]
        return web.json_response(
            {"messages": listed, "next_page_uri": None, "page": 0, "page_size": len(listed)}
        )


def _listed(item: Received) -> dict[str, object]:
    service = item.sender if item.sender.startswith("MG") else None
    stamp = format_datetime(item.at) if item.at else None
    return {
        "sid": f"SM{item.message_id:032d}",
        "to": item.to,
        "from": None if service else item.sender,
        "messaging_service_sid": service,
        "status": "delivered",
        "direction": "outbound-api",
        "date_created": stamp,
        "date_sent": stamp,
    }


class RunningFake:
    """The fake on its own thread and loop, on a free loopback port (for tests)."""

    def __init__(self, fake: FakeProviders) -> None:
        self.fake = fake
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        self._runner: web.AppRunner | None = None
        self.thread = threading.Thread(target=self._run, name="fake-providers", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self.ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.fake.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> RunningFake:
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


_ACCEPTED = {
    b"/v3/mail/send": b"HTTP/1.1 202 Accepted\r\nX-Message-Id: fake\r\nContent-Length: 0\r\n\r\n",
    b"/2010-04-01": (
        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 65\r\n\r\n"
        b'{"sid": "SM00000000000000000000000000000001", "status": "queued"}'
    ),
}


class CountingSink(asyncio.Protocol):
    """The benchmark's sink: minimal HTTP/1.1 keep-alive parsing, a fixed accepted answer.

    aiohttp's own server tops out near the client's speed on one core, which would make the
    benchmark measure the fake; this answers several times faster, after `delay` seconds (a
    provider's round trip) when set."""

    count = 0
    delay = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].lower() + b"\r\n"
            marker = head.find(b"content-length:")
            length = int(head[marker + 15 : head.find(b"\r\n", marker)]) if marker >= 0 else 0
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            path = self.buffer.split(b" ", 2)[1]
            self.buffer = self.buffer[end:]
            CountingSink.count += 1
            key = b"/v3/mail/send" if path.startswith(b"/v3/") else b"/2010-04-01"
            answer = self.transport.write  # type: ignore[attr-defined]  # a stream transport (TCP)
            if self.delay:
                asyncio.get_running_loop().call_later(self.delay, answer, _ACCEPTED[key])
            else:
                answer(_ACCEPTED[key])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--count-only", action="store_true", help="skip parsing (benchmarks)")
    args = parser.parse_args()
    fake = FakeProviders(delay=args.delay, count_only=args.count_only)
    CountingSink.delay = args.delay

    async def sink() -> None:
        server = await asyncio.get_running_loop().create_server(
            CountingSink, "127.0.0.1", args.port
        )
        port = server.sockets[0].getsockname()[1]
        print(f"FAKE_PROVIDERS_URL=http://127.0.0.1:{port}", flush=True)
        await server.serve_forever()

    async def serve() -> None:
        runner = web.AppRunner(fake.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", args.port)
        await site.start()
        port = runner.addresses[0][1]
        print(f"FAKE_PROVIDERS_URL=http://127.0.0.1:{port}", flush=True)
        await asyncio.Event().wait()

    try:
        import uvloop

        uvloop.run(sink() if args.count_only else serve())
    except ImportError:  # pragma: no cover
        asyncio.run(sink() if args.count_only else serve())


if __name__ == "__main__":
    main()
