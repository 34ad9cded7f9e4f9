"""Provider calls in a child process, so that one worker uses two cores.

A worker's own process renders, checks and records; building each provider payload and the
pooled HTTP calls were as much work again, all on the same core (one GIL). The child does only
those calls: it receives the channels once (their settings pickle, never an open connection),
then sub-batches as the worker hands them over, and answers each, in order, with one outcome per
message. It reads ahead: the next sub-batch's calls start as soon as the one before it frees a
connection, so the pool never drains between sub-batches, and the worker never waits to hand
one over. Meanwhile the worker records what was answered and renders what comes next.

Exactly once still holds: a message is marked "sending" before it is handed over. A child that
dies before it has the whole of a sub-batch sent none of it (retried like any outage); one that
dies after leaves every unanswered sub-batch uncertain, as a worker crash would. The child dies
with its worker (PDEATHSIG, and the socket's end of file), so a killed worker cannot leave a
sender running on its own.

    python -m scheduler.sender_process FD     # started by SenderProcess, never by hand
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from providers.base import ProviderUnavailable, ProviderUncertain
from providers.sendgrid import leave_out_webhook_helper
from scheduler.sending import Outcome, Outgoing, new_event_loop, send_all

log = logging.getLogger("nurture.send")

#: How often a waiting worker checks that its sender is still alive.
POLL_SECONDS = 1.0
NOT_HANDED = "the sender process did not take these messages (nothing was sent)"
UNANSWERED = "the sender process stopped after the messages were handed to it"
PR_SET_PDEATHSIG = 1
#: glibc's mallopt parameter, and the size from which an allocation gets its own mapping.
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 1024
#: A frame on the socket: its length, then a pickle.
FRAME = struct.Struct("!Q")
#: Bytes of kernel buffer asked for on each side of the socket (see _widen).
SOCKET_BUFFER = 8 * 2**20
#: The child's first frame, once it has its channels.
READY = b"ready"
#: Then each frame is a kind and its body: every call of sub-batch N has begun (N counts the
#: sub-batches handed over, from 0), or the next sub-batch's outcomes (a pickle), in order.
STARTED, ANSWER = b"s", b"a"
SEQUENCE = struct.Struct("!Q")


def portable(channel: object) -> bool:
    """Whether a channel may be handed to the sender: its own class (not a subclass, which may
    live in a module the child cannot import) says its state pickles and it sends async."""
    return bool(type(channel).__dict__.get("portable", False))


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

    def __init__(self, channels: dict[str, object], limits: dict[str, int]) -> None:
        self.channels, self.limits = channels, limits
        self._child: subprocess.Popen[bytes] | None = None
        self._socket: socket.socket | None = None
        self._queued: deque[PendingSend] = deque()  # handed over, answers still to come
        self._handed = 0  # sub-batches handed to this child, for its STARTED frames

    def submit(self, items: Sequence[Outgoing]) -> PendingSend:
        pending = PendingSend(self, items)
        try:
            frame = pickle.dumps(list(items), protocol=pickle.HIGHEST_PROTOCOL)
            _send_frame(self._connection(), frame)
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
        """The next frame: a queued sub-batch whose calls have all begun, or the oldest queued
        sub-batch's outcomes (they come back in the order handed over)."""
        sock, child, head = self._socket, self._child, self._queued[0]
        assert sock is not None and child is not None
        try:
            frame = _recv_frame(sock, lambda: child.poll() is None)
            kind, body = frame[:1], memoryview(frame)[1:]
            if kind == STARTED:
                (number,) = SEQUENCE.unpack(body)
                # the queue holds the last len(_queued) sub-batches handed over, oldest first
                index = number - (self._handed - len(self._queued))
                if 0 <= index < len(self._queued):
                    self._queued[index].started = True
                return
            head.outcomes = pickle.loads(body)
            head.started = True
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
        if self._queued and self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_WR)
            while self._queued:
                self.receive_next()
        child, sock = self._child, self._socket
        self._socket = self._child = None
        if sock is not None:
            sock.close()
        if child is not None:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def _connection(self) -> socket.socket:
        """The child's socket, starting the child and waiting for it to say it is ready (a
        child that cannot start sent nothing, so its sub-batch may be retried)."""
        if self._socket is None:
            setup = (self.channels, self.limits, logging.getLogger().getEffectiveLevel())
            frame = pickle.dumps(setup, protocol=pickle.HIGHEST_PROTOCOL)
            ours, theirs = socket.socketpair()
            _widen(ours, theirs)
            with theirs:
                self._child = subprocess.Popen(
                    [sys.executable, "-m", "scheduler.sender_process", str(theirs.fileno())],
                    pass_fds=(theirs.fileno(),),
                    stdin=subprocess.DEVNULL,
                )
            self._socket, child = ours, self._child
            _send_frame(ours, frame)
            try:
                ready = _recv_frame(ours, lambda: child.poll() is None)
            except EOFError:
                raise OSError(f"it did not start (exit status {child.wait()})") from None
            if ready != READY:
                raise OSError(f"it did not start: {ready[:200]!r}")
        return self._socket

    def _discard(self) -> None:
        child, sock = self._child, self._socket
        self._socket = self._child = None
        self._handed = 0  # a new child counts from 0
        if sock is not None:
            sock.close()
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()


def _widen(ours: socket.socket, theirs: socket.socket) -> None:
    """Room in the kernel for a few whole sub-batches (200 emails are about 1 MB), so handing
    one over returns at once instead of waiting, frame by frame, for a busy child to read it.
    The kernel caps the size (net.core.wmem_max); a smaller buffer is only slower."""
    for side, option in ((ours, socket.SO_SNDBUF), (theirs, socket.SO_RCVBUF)):
        with contextlib.suppress(OSError):
            side.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)


def _all(items: Sequence[Outgoing], error: Exception) -> list[Outcome]:
    return [error for _ in items]  # type: ignore[misc]


def _send_frame(sock: socket.socket, payload: bytes) -> None:
    sock.settimeout(None)  # never half a frame: a child that is alive reads it all
    sock.sendall(FRAME.pack(len(payload)))
    sock.sendall(payload)


def _recv_frame(sock: socket.socket, alive: Callable[[], bool]) -> bytes:
    """One whole frame; EOFError if the child is gone first (checked every POLL_SECONDS)."""
    (size,) = FRAME.unpack(_recv_exactly(sock, FRAME.size, alive))
    return bytes(_recv_exactly(sock, size, alive))


def _recv_exactly(sock: socket.socket, size: int, alive: Callable[[], bool]) -> bytearray:
    buffer = bytearray(size)
    view, got = memoryview(buffer), 0
    sock.settimeout(POLL_SECONDS)
    while got < size:
        try:
            n = sock.recv_into(view[got:])
        except TimeoutError:
            if not alive():
                raise EOFError("the sender process exited") from None
            continue
        if n == 0:
            raise EOFError("the sender process closed its end")
        got += n
    return buffer


# -- the child ----------------------------------------------------------------------------------
def _die_with_parent() -> None:
    """Linux: the kernel kills this process when the worker that started it dies."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _return_large_buffers() -> None:
    """glibc: every buffer of 128 KiB or more (a sub-batch's frame is about 1 MB) gets its own
    mapping, handed back to the kernel when freed. By default glibc raises that threshold to
    the size of the first such buffer freed, and the frames that follow then come from the
    heap, which fragments: about 2 MB more resident, for nothing."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)


async def _read_frame(reader: asyncio.StreamReader) -> bytes | None:
    try:
        (size,) = FRAME.unpack(await reader.readexactly(FRAME.size))
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        return None  # the worker closed its end (or died)


async def serve(sock: socket.socket) -> None:
    """Start each sub-batch as it arrives (sharing one limit per channel with those before it)
    and answer them in the order they came, until end of input."""
    reader, writer = await asyncio.open_unix_connection(sock=sock, limit=2**22)
    setup = await _read_frame(reader)
    if setup is None:
        return
    channels, limits, level = pickle.loads(setup)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s (sender): %(message)s")
    gates = {name: asyncio.Semaphore(limit) for name, limit in limits.items()}
    answers: asyncio.Queue[asyncio.Task[list[Outcome]] | None] = asyncio.Queue()
    writer.write(FRAME.pack(len(READY)) + READY)

    def started(number: int) -> Callable[[], None]:
        frame = FRAME.pack(1 + SEQUENCE.size) + STARTED + SEQUENCE.pack(number)
        return lambda: writer.write(frame)  # whole, between two answers (one loop step)

    async def answer_in_order() -> None:
        try:
            while (calls := await answers.get()) is not None:
                payload = pickle.dumps(await calls, protocol=pickle.HIGHEST_PROTOCOL)
                writer.write(FRAME.pack(1 + len(payload)) + ANSWER)
                writer.write(payload)
                await writer.drain()
        except Exception:  # an answer that cannot be given: stop, so the worker knows at once
            log.exception("the sender process cannot answer; stopping")
            os._exit(70)

    answering = asyncio.create_task(answer_in_order())
    try:
        handed = 0
        while (frame := await _read_frame(reader)) is not None:
            items = pickle.loads(frame)
            calls = send_all(items, channels, limits, gates, started=started(handed))
            answers.put_nowait(asyncio.create_task(calls))
            handed += 1
        answers.put_nowait(None)
        await answering
    finally:
        for channel in channels.values():
            close: Any = getattr(channel, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()
        writer.close()


def main() -> None:
    _die_with_parent()
    _return_large_buffers()
    leave_out_webhook_helper()  # this process sends; it never checks a webhook's signature
    # Stopping is the worker's to decide (Ctrl-C, or SIGTERM to the whole service): the child
    # finishes what it has and leaves at the end of its input, or dies with the worker.
    for stop in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop, signal.SIG_IGN)
    fd = int(sys.argv[1])
    loop = new_event_loop()
    try:
        loop.run_until_complete(serve(socket.socket(fileno=fd)))
    finally:
        loop.close()


if __name__ == "__main__":
    main()
