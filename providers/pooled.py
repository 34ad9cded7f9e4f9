"""The one HTTP transport of the providers: a pooled aiohttp session, and the one timeout rule.

The SendGrid SDK opens a new connection per request (python_http_client uses urllib) and the
Twilio SDK's sync client sends one request at a time; a keep-alive pool with bounded concurrency
sends the same payloads an order of magnitude faster (see shared/providers/README.md).

The timeout rule, for every provider: a transport failure is judged by what it tells us about
the request.
- The connection was never made (refused, DNS, TLS handshake, connect timeout, or no pooled
  connection free in time): nothing reached the provider, so the send is *unavailable* and a
  retry is safe.
- Anything after that (a read timeout once the body was written, the connection dropped while
  waiting for the answer): the provider may have accepted it, and neither provider takes an
  idempotency key, so the send is *uncertain* and is never blindly retried.

aiohttp is imported on first use: a worker hands its calls to its sender process and never
opens a pool (the import costs a process about 10 MB).
"""

from __future__ import annotations

from collections.abc import Mapping
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
    """A lazily opened aiohttp session with `concurrency` keep-alive connections.

    Opened on first use, on the event loop that uses it (an aiohttp session belongs to its loop),
    and pickled as its settings only, so a provider can be handed to the sender process."""

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

    def __getstate__(self) -> dict[str, object]:
        """Settings only: a session belongs to the loop (and process) that opened it."""
        return {**self.__dict__, "_session": None}

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            import aiohttp

            connector = aiohttp.TCPConnector(limit=self.concurrency, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector,
                # `connect` ends before anything is written (unavailable); `sock_read` and the
                # overall cap can only fire after the connection was made (uncertain).
                timeout=aiohttp.ClientTimeout(
                    total=self.connect_timeout + self.timeout,
                    connect=self.connect_timeout,
                    sock_read=self.timeout,
                ),
                headers=self.headers,
                raise_for_status=False,
            )
        return self._session

    async def post(self, url: str, *, data: bytes) -> Reply:
        """POST `data` with the pool's headers (its Content-Type included); the provider's
        answer whatever its status, or one of the two transport errors (see the module)."""
        session = self._open()
        import aiohttp  # imported by _open

        try:
            async with session.post(url, data=data) as response:
                return Reply(response.status, response.headers, await response.read())
        # Before a connection exists (ConnectionTimeoutError is the `connect` timeout, which
        # covers waiting for a pooled connection and making one): nothing was sent.
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise ProviderUnavailable(self.provider, f"cannot connect: {exc}") from exc
        # Once connected: the request may have been written.
        except (TimeoutError, aiohttp.ClientError) as exc:
            reason = f"no answer after the request was sent ({type(exc).__name__})"
            raise ProviderUncertain(self.provider, reason) from exc

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
