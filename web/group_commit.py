"""Group commit: many requests' writes in one transaction, from one background thread.

A commit (an fsync on SQLite with synchronous=FULL, a WAL flush on PostgreSQL) costs far more than
the rows in it, so the web server hands writes to one writer thread that commits whatever has
queued up meanwhile. A caller that must not answer before its row is durable (unsubscribe) waits
on the future it gets back; one that need not (a click) does not wait.

The thread lives from the app's lifespan startup to its shutdown, and shutdown drains the queue,
so nothing accepted is lost on a clean stop. Outside a lifespan (a bare TestClient, a script),
`add` and `commit` write synchronously in the caller's thread instead.

It holds no SQL of its own: `write` is a batched form of the one rule (contacts.optout's
`opt_out_many` for unsubscribes, web.links' `record_clicks` for clicks).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger("nurture.web.writer")
_Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"] | None


class GroupCommitter(Generic[T]):
    def __init__(
        self,
        name: str,
        write: Callable[[Sequence[T]], None],
        *,
        linger: float = 0.0,
        busy_linger: float = 0.0,
        max_batch: int = 2000,
        retry_seconds: float = 0.5,
    ) -> None:
        self.name, self.write = name, write
        self.linger, self.max_batch, self.retry_seconds = linger, max_batch, retry_seconds
        # Gathering: see `_gather`.
        self.busy_linger = busy_linger
        self._last_batch = 0
        self._gather_until = 0  # while the writer gathers: the queue length it waits for
        self._gathered = threading.Event()
        self._queue: deque[tuple[T, _Waiter]] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.batches = 0
        self.written = 0

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Write everything queued, then end the thread (the lifespan's shutdown calls this)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping = True
        self._wake.set()
        thread.join(timeout)
        log.info(
            "%s: %d rows in %d batches (%.1f per commit)",
            self.name,
            self.written,
            self.batches,
            self.written / max(self.batches, 1),
        )
        if self._queue:
            log.error("%s: %d queued writes could not be committed", self.name, len(self._queue))

    def add(self, item: T) -> None:
        """Queue a write nobody waits for (a click): committed within `linger`, or at shutdown."""
        if self._thread is None:
            self.write([item])
            return
        self._queue.append((item, None))
        if not self._wake.is_set():
            self._wake.set()
        if self._gather_until and len(self._queue) >= self._gather_until:
            self._gathered.set()

    async def commit(self, item: T) -> None:
        """Queue a write and return once it is committed; raises if it could not be."""
        if self._thread is None:
            self.write([item])
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.append((item, (loop, future)))
        if not self._wake.is_set():
            self._wake.set()
        if self._gather_until and len(self._queue) >= self._gather_until:
            self._gathered.set()
        await future

    def pending(self) -> int:
        return len(self._queue)

    # -- the writer thread ------------------------------------------------------------------
    def _run(self) -> None:
        """Wait for work, let more gather for `linger`, commit one batch, go round again."""
        while True:
            self._wake.wait()
            # Linger only while a batch is still filling: a backlog is written back to back,
            # or a writer slower than its arrivals would fall further behind with every batch.
            if self.linger and not self._stopping and len(self._queue) < self.max_batch:
                time.sleep(self.linger)
            elif self.busy_linger and not self._stopping and len(self._queue) < self._last_batch:
                self._gather(min(self._last_batch, self.max_batch))
            self._wake.clear()
            batch = self._take()
            if batch:
                self._last_batch = len(batch)
                if not self._commit(batch) and not self._stopping:
                    time.sleep(self.retry_seconds)
            if self._queue:
                self._wake.set()
            elif self._stopping:
                return

    def _gather(self, size: int) -> None:
        """Wait up to `busy_linger` for the queue to hold `size` writes (the last batch's size).

        In a flood, the requests one commit answered come back while the next is being
        written; committing whatever has arrived at once split them into two groups taking
        turns, each paying a whole fsync for half the rows. Waiting for as many as the last
        batch held (not a fixed linger) ends the wait the moment they are back, and a batch of
        one (a lone unsubscribe) never waits: its size is already reached.
        """
        self._gathered.clear()
        self._gather_until = size
        if len(self._queue) < size:  # (a write queued before the target was set)
            self._gathered.wait(self.busy_linger)
        self._gather_until = 0

    def _take(self) -> list[tuple[T, _Waiter]]:
        batch: list[tuple[T, _Waiter]] = []
        while self._queue and len(batch) < self.max_batch:
            batch.append(self._queue.popleft())
        return batch

    def _commit(self, batch: list[tuple[T, _Waiter]]) -> bool:
        """Write the batch in one transaction; on failure, one by one so a bad row fails alone."""
        try:
            self.write([item for item, _ in batch])
        except Exception:
            log.warning("%s: batch of %d failed; writing one by one", self.name, len(batch))
            return self._write_each(batch)
        self.batches += 1
        self.written += len(batch)
        _settle([waiter for _, waiter in batch], None)
        return True

    def _write_each(self, batch: list[tuple[T, _Waiter]]) -> bool:
        ok = True
        for item, waiter in batch:
            try:
                self.write([item])
            except Exception as exc:
                log.exception("%s: write failed", self.name)
                _settle([waiter], exc)
                ok = False
            else:
                self.written += 1
                _settle([waiter], None)
        return ok


def _settle(waiters: list[_Waiter], error: Exception | None) -> None:
    """Wake the waiting requests: one call into each event loop per batch, not one per row."""
    by_loop: defaultdict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = defaultdict(list)
    for waiter in waiters:
        if waiter is not None:
            by_loop[waiter[0]].append(waiter[1])
    for loop, futures in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve, futures, error)
        except RuntimeError:  # the loop has closed: nobody is waiting any more
            pass


def _resolve(futures: list[asyncio.Future[None]], error: Exception | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
