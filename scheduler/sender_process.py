"""Provider calls in a child process, so that one worker uses two cores.

A worker's own process renders, checks and records; building each provider payload and the
pooled HTTP calls were as much work again, all on the same core (one GIL). The child does only
those calls: it receives the providers once (their settings pickle, never an open connection),
then sub-batches as the worker hands them over, and answers each, in order, with one outcome per
message. It reads ahead: the next sub-batch's calls start as soon as the one before it frees a
connection, so the pool never drains between sub-batches, and the worker never waits to hand
one over. Meanwhile the worker records what was answered and renders what comes next.

The child is `python -m scheduler.sender_process`, which imports only what sending needs (a
multiprocessing spawn would import the worker's main module again: the whole CLI). The two talk
over a `multiprocessing.connection` Listener/Client pair (a Unix socket, authenticated with a
key handed over on the child's stdin), whose `send`/`recv` frame and pickle each message.
Worker to child: the providers and limits once, each sub-batch (a list of `Outgoing`), then None
for end of input. Child to worker: READY once, then (STARTED, n) when every call of sub-batch n
(counted from 0) has begun, and (ANSWER, outcomes) per sub-batch, in the order handed over.

Exactly once still holds: a message is marked "sending" before it is handed over. A child that
dies before it has the whole of a sub-batch sent none of it (retried like any outage); one that
dies after leaves every unanswered sub-batch uncertain, as a worker crash would. A child whose
worker is gone (its end of the pipe closed, e.g. kill -9) exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.connection import Client, Connection, Listener
from typing import Any

from providers.base import Provider, ProviderError, ProviderUnavailable, ProviderUncertain
from scheduler.sending import Channels, Outcome, Outgoing, new_event_loop, send_all

log = logging.getLogger("nurture.send")

#: How often a worker waiting for its new sender to connect checks that it is still alive.
POLL_SECONDS = 0.5
NOT_HANDED = "the sender process did not take these messages (nothing was sent)"
UNANSWERED = "the sender process stopped after the messages were handed to it"
READY, STARTED, ANSWER = "ready", "started", "answer"
#: The providers whose calls go to the sender: the network providers, whose state is settings
#: (providers/pooled.py). By exact class: the outbox and test doubles stay in the worker (a
#: subclass may live in a module the child cannot import, or record what it sends in the
#: worker). Named, not imported, so that a process that only builds a dispatcher (the CLI) or
#: sends through the outbox never loads the provider SDKs.
NETWORK_PROVIDERS = frozenset(
    {"providers.sendgrid.SendGridChannel", "providers.twilio.TwilioChannel"}
)


def runs_in_sender(channel: Provider[Any]) -> bool:
    kind = type(channel)
    return f"{kind.__module__}.{kind.__qualname__}" in NETWORK_PROVIDERS


class PendingSend:
    """One sub-batch handed to the sender; `result()` waits for its outcomes, `wait_started()`
    until all its calls have begun."""

    def __init__(self, sender: SenderProcess, items: Sequence[Outgoing]) -> None:
        self.sender, self.items = sender, items
        self.outcomes: list[Outcome] | None = None
        self.started = False

    def result(self) -> list[Outcome]:
        while self.outcomes is None:
            self.sender.receive_next()
        return self.outcomes

    def wait_started(self) -> None:
        while not self.started and self.outcomes is None:
            self.sender.receive_next()


class SenderProcess:
    """The worker's side: starts the child on first use and again after it died."""

    def __init__(self, channels: Channels, limits: dict[str, int]) -> None:
        self.channels, self.limits = channels, limits
        self._child: subprocess.Popen[bytes] | None = None
        self._pipe: Connection | None = None
        self._queued: deque[PendingSend] = deque()  # handed over, answers still to come
        self._handed = 0  # sub-batches handed to this child, for its STARTED messages

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    def submit(self, items: Sequence[Outgoing]) -> PendingSend:
        pending = PendingSend(self, items)
        try:
            self._connection().send(list(items))
        except Exception as exc:  # it never had the whole sub-batch, so it sent none of it
            log.warning("could not hand a sub-batch to the sender process: %s", exc)
            while self._queued:  # what it answered before it went is still readable
                self.receive_next()
            self._discard()
            pending.outcomes = _all(items, ProviderUnavailable("engine", NOT_HANDED))
            return pending
        self._queued.append(pending)
        self._handed += 1
        return pending

    def receive_next(self) -> None:
        """The next message: a queued sub-batch whose calls have all begun, or the oldest queued
        sub-batch's outcomes (they come back in the order handed over)."""
        pipe, head = self._pipe, self._queued[0]
        assert pipe is not None
        try:
            kind, body = pipe.recv()
            if kind == STARTED:
                # the queue holds the last len(_queued) sub-batches handed over, oldest first
                index = body - (self._handed - len(self._queued))
                if 0 <= index < len(self._queued):
                    self._queued[index].started = True
                return
            if kind != ANSWER or len(body) != len(head.items):
                raise ValueError(f"unexpected answer {kind!r}")
            head.outcomes, head.started = body, True
            self._queued.popleft()
        except Exception as exc:  # gone, or an answer that cannot be read: the same to us
            log.error("the sender process stopped during a sub-batch (%s)", exc)
            for unanswered in self._queued:  # it may have started any of them
                unanswered.outcomes = _all(
                    unanswered.items, ProviderUncertain("engine", UNANSWERED)
                )
            self._queued.clear()
            self._discard()

    def close(self) -> None:
        """End of input: the child finishes what it has (its answers are read and kept), closes
        its pools and exits. Call it once no tick is running (Dispatcher.close/shutdown)."""
        if self._pipe is not None:
            with contextlib.suppress(OSError):
                self._pipe.send(None)
            while self._queued:
                self.receive_next()
        child, pipe = self._child, self._pipe
        self._pipe = self._child = None
        if pipe is not None:
            pipe.close()
        if child is not None:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def _connection(self) -> Connection:
        """The child's pipe, starting the child and waiting for it to say it is ready (a child
        that cannot start sent nothing, so its sub-batch may be retried)."""
        if self._pipe is None:
            key = secrets.token_bytes(32)
            with Listener(family="AF_UNIX", authkey=key) as listener:
                address = str(listener.address)  # a Unix socket path
                command = [sys.executable, "-m", "scheduler.sender_process", address]
                child = subprocess.Popen(command, stdin=subprocess.PIPE)
                assert child.stdin is not None
                with child.stdin:
                    child.stdin.write(key)
                self._child = child
                self._pipe = _accept(listener, child, key)
            level = logging.getLogger().getEffectiveLevel()
            self._pipe.send((self.channels, self.limits, level))
            try:
                ready = self._pipe.recv()
            except EOFError:
                raise OSError(f"it did not start (exit status {child.wait()})") from None
            if ready != READY:
                raise OSError(f"it did not start: {ready!r:.200}")
        return self._pipe

    def _discard(self) -> None:
        child, pipe = self._child, self._pipe
        self._pipe = self._child = None
        self._handed = 0  # a new child counts from 0
        if pipe is not None:
            pipe.close()
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()


def _accept(listener: Listener, child: subprocess.Popen[bytes], key: bytes) -> Connection:
    """The child's connection, or OSError if it exits first (then nothing waits for it: the
    worker connects to its own listener, which ends the accept)."""
    accepted: list[Connection] = []
    failed: list[BaseException] = []

    def accept() -> None:
        try:
            accepted.append(listener.accept())
        except Exception as exc:
            failed.append(exc)

    waiting = threading.Thread(target=accept, name="nurture-sender-accept", daemon=True)
    waiting.start()
    while waiting.is_alive() and child.poll() is None:
        waiting.join(POLL_SECONDS)
    if waiting.is_alive():  # the child exited without connecting
        Client(listener.address, family="AF_UNIX", authkey=key).close()
        waiting.join()
        for connection in accepted:
            connection.close()
        raise OSError(f"it did not start (exit status {child.wait()})")
    if not accepted:
        raise OSError(f"it did not connect: {failed[0]!r}")
    return accepted[0]


def _all(items: Sequence[Outgoing], error: ProviderError) -> list[Outcome]:
    return [error for _ in items]


# -- the child ----------------------------------------------------------------------------------
def main() -> None:
    """`python -m scheduler.sender_process ADDRESS`, the key on stdin: started by SenderProcess,
    never by hand."""
    # Stopping is the worker's to decide (Ctrl-C, or SIGTERM to the whole service): the child
    # finishes what it has and leaves at the end of its input, or when its worker is gone.
    for stop in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop, signal.SIG_IGN)
    pipe = Client(sys.argv[1], family="AF_UNIX", authkey=sys.stdin.buffer.read())
    channels, limits, level = pipe.recv()
    logging.basicConfig(level=level, format="%(levelname)s %(name)s (sender): %(message)s")
    loop = new_event_loop()
    try:
        loop.run_until_complete(serve(pipe, channels, limits))
    finally:
        loop.close()


async def serve(pipe: Connection, channels: Channels, limits: dict[str, int]) -> None:
    """Start each sub-batch as it arrives (sharing one limit per channel with those before it)
    and answer them in the order they came, until end of input.

    The pipe is read and written by a thread each, so that neither a large sub-batch coming in
    nor an answer the worker has not read yet ever holds up the calls on this loop."""
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[list[Outgoing] | None] = asyncio.Queue()
    outbox: queue.SimpleQueue[object] = queue.SimpleQueue()
    done = object()

    def read() -> None:
        try:
            while (items := pipe.recv()) is not None:
                loop.call_soon_threadsafe(inbox.put_nowait, items)
        except EOFError:  # the worker is gone: nobody is left to answer, stop at once
            os._exit(0)
        except Exception:
            log.exception("the sender process cannot read its input; stopping")
            os._exit(70)
        loop.call_soon_threadsafe(inbox.put_nowait, None)

    def write() -> None:
        while (message := outbox.get()) is not done:
            try:
                pipe.send(message)
            except Exception:  # an answer that cannot be given: stop, so the worker knows
                log.exception("the sender process cannot answer; stopping")
                os._exit(70)

    def started(number: int) -> Callable[[], None]:
        return lambda: outbox.put((STARTED, number))

    async def answer_in_order() -> None:
        while (calls := await answers.get()) is not None:
            outbox.put((ANSWER, await calls))

    writer = threading.Thread(target=write, name="nurture-sender-write")
    writer.start()
    threading.Thread(target=read, name="nurture-sender-read", daemon=True).start()
    outbox.put(READY)
    gates = {name: asyncio.Semaphore(limit) for name, limit in limits.items()}
    answers: asyncio.Queue[asyncio.Task[list[Outcome]] | None] = asyncio.Queue()
    answering = asyncio.create_task(answer_in_order())
    try:
        handed = 0
        while (items := await inbox.get()) is not None:
            calls = send_all(items, channels, limits, gates, started=started(handed))
            answers.put_nowait(asyncio.create_task(calls))
            handed += 1
        answers.put_nowait(None)
        await answering
    finally:
        for channel in {id(channel): channel for channel in channels.values()}.values():
            with contextlib.suppress(Exception):
                await channel.aclose()
        outbox.put(done)
        writer.join()


if __name__ == "__main__":
    main()
