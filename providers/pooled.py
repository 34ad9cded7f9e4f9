"""One pooled aiohttp session per provider, made inside the dispatcher's event loop.

The SendGrid SDK opens a new connection per request (python_http_client uses urllib) and the
Twilio SDK's sync client sends one request at a time; a keep-alive pool with bounded concurrency
sends the same payloads an order of magnitude faster (see shared/providers/README.md).

Transport failures are split by what they tell us about the request: if the connection was never
made, nothing reached the provider and a retry is safe; if the body may have been written and no
answer came back, a retry could deliver twice, so the send is "uncertain".

aiohttp is imported when a pool first opens: a worker whose calls go through its sender process
never opens one (and saves the 10 MB the import costs).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from providers.base import ProviderUnavailable, ProviderUncertain

if TYPE_CHECKING:
    import aiohttp


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes


class PooledHttp:
    """A lazily opened aiohttp session with `concurrency` keep-alive connections."""

    def __init__(
        self,
        provider: str,
        *,
        concurrency: int,
        timeout: float,
        connect_timeout: float = 5.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.provider, self.concurrency = provider, concurrency
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self.headers = dict(headers or {})
        self._session: aiohttp.ClientSession | None = None
        #: (never connected, may have been sent): the exceptions `post` tells apart, known once
        #: aiohttp is imported (an empty tuple matches nothing before that).
        self._errors: tuple[tuple[type[BaseException], ...], ...] = ((), ())

    def __getstate__(self) -> dict[str, object]:
        """Settings only: a session belongs to the loop (and process) that opened it."""
        return {**self.__dict__, "_session": None}

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            import aiohttp

            self._errors = (
                (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError),
                (TimeoutError, aiohttp.ClientError),
            )
            connector = aiohttp.TCPConnector(limit=self.concurrency, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(
                    total=self.timeout, sock_connect=self.connect_timeout
                ),
                headers=self.headers,
                raise_for_status=False,
            )
        return self._session

    async def post(
        self, url: str, *, data: bytes | Mapping[str, str], content_type: str | None = None
    ) -> Reply:
        """POST `data`; a pool whose headers name the Content-Type needs no `content_type`
        (no per-request header merge on the hot path)."""
        headers = {"Content-Type": content_type} if content_type else None
        session = self._open()
        never_connected, maybe_sent = self._errors
        try:
            async with session.post(url, data=data, headers=headers) as response:
                body = await response.read()
                return Reply(response.status, response.headers, body)
        except never_connected as exc:
            raise ProviderUnavailable(self.provider, f"cannot connect: {exc}") from exc
        except maybe_sent as exc:
            reason = f"no answer after the request was sent ({type(exc).__name__})"
            raise ProviderUncertain(self.provider, reason) from exc

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


@asynccontextmanager
async def opened(http: PooledHttp) -> AsyncIterator[PooledHttp]:
    """For scripts and tests: a pool closed on exit."""
    try:
        yield http
    finally:
        await http.aclose()
        await asyncio.sleep(0)
