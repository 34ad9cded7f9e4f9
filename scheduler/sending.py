"""The provider calls of one sub-batch, made concurrently on an event loop of the worker's own.

The dispatcher's database work stays synchronous (SQLAlchemy sessions, APScheduler threads);
only the provider calls run here, on one long-lived loop thread so that the pooled aiohttp
sessions keep their connections between batches (aiohttp sessions belong to the loop that made
them). Every channel is a `providers.base.Provider`: one async `send` each.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from providers.base import (
    OutgoingEmail,
    OutgoingSms,
    Provider,
    ProviderError,
    ProviderUncertain,
    SendResult,
)

log = logging.getLogger("nurture.send")

T = TypeVar("T")
Outcome = SendResult | ProviderError
#: The provider of each channel ("email", "sms"); one object may serve both.
Channels = Mapping[str, Provider[Any]]


class Pending(Protocol):
    """Provider calls under way (on the send loop, or a sub-batch in the sender process)."""

    def result(self) -> list[Outcome]: ...

    def wait_started(self) -> None:
        """Until every call has begun (or the calls are over): from then on, none of them is
        still waiting for a connection, so nothing of this sub-batch can be held back."""


@dataclass
class Outgoing:
    """A rendered message, checked and claimed, waiting for its provider call."""

    message_id: int
    contact_id: int
    campaign_id: int
    channel: str
    attempts: int
    payload: OutgoingEmail | OutgoingSms

    @property
    def cost(self) -> int:
        """Tokens it takes: SMS pacing counts billed segments, email counts messages."""
        return self.payload.segments if isinstance(self.payload, OutgoingSms) else 1


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:  # uvloop ships with uvicorn[standard]; its loop makes aiohttp about 30% faster here
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - not on Linux
        return asyncio.new_event_loop()


class SendLoop:
    """An event loop on a daemon thread; `run` blocks the calling thread until a coroutine ends."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="nurture-send", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self._ensure())

    def send(
        self,
        items: Sequence[Outgoing],
        channels: Channels,
        limits: dict[str, int],
    ) -> LoopSend:
        """A sub-batch's calls, started on the loop."""
        return LoopSend(self, items, channels, limits)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.submit(coroutine).result()

    def close(self, *channels: Provider[Any]) -> None:
        """Close the channels' pools on the loop, then stop the loop and its thread."""
        if self._loop is None:
            return
        for channel in {id(channel): channel for channel in channels}.values():  # email may be sms
            try:
                self.run(channel.aclose())
            except Exception:
                log.exception("closing a provider pool failed")
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._loop.close()
        self._loop = self._thread = None


class LoopSend:
    """A sub-batch's calls on the send loop: its outcomes, and the moment all have begun."""

    def __init__(
        self,
        loop: SendLoop,
        items: Sequence[Outgoing],
        channels: Channels,
        limits: dict[str, int],
    ) -> None:
        self._begun = threading.Event()
        self._calls = loop.submit(send_all(items, channels, limits, started=self._begun.set))

    def result(self) -> list[Outcome]:
        return self._calls.result()

    def wait_started(self) -> None:
        self._begun.wait()  # set by send_all, at the latest when it ends


async def send_all(
    items: Sequence[Outgoing],
    channels: Channels,
    limits: dict[str, int],
    gates: dict[str, asyncio.Semaphore] | None = None,
    started: Callable[[], None] | None = None,
) -> list[Outcome]:
    """Send every item, at most `limits[channel]` at once (or as `gates` allow, when several
    sub-batches share them); one outcome per item, in order. `started` is called once every
    call has begun (taken its connection), or at the latest when all are over.

    An unexpected exception is recorded as uncertain: we cannot tell whether it happened before
    or after the request left, and a blind retry could deliver twice.
    """
    if gates is None:
        gates = {name: asyncio.Semaphore(limit) for name, limit in limits.items()}
    waiting = len(items)
    told = False

    def tell_if_started() -> None:
        nonlocal told
        if not told and waiting == 0 and started is not None:
            told = True
            started()

    async def one(item: Outgoing) -> Outcome:
        nonlocal waiting
        async with gates[item.channel]:
            waiting -= 1
            tell_if_started()
            try:
                return await channels[item.channel].send(item.payload)
            except ProviderError as exc:
                return exc
            except Exception as exc:
                log.exception("provider call for message %d raised", item.message_id)
                return ProviderUncertain("engine", f"unexpected {type(exc).__name__}: {exc}")

    tell_if_started()  # no items
    try:
        return list(await asyncio.gather(*(one(item) for item in items)))
    finally:
        waiting = 0
        tell_if_started()
