"""Provider calls in a child process, so that one worker uses two cores.

A worker's own process renders, checks and records; building each provider payload and the
pooled HTTP calls were as much work again, all on the same core (one GIL). The child does only
those calls: it receives the channels once (their settings pickle, never an open connection),
then one sub-batch at a time, and answers with one outcome per message. Meanwhile the worker
records the sub-batch before and renders the next one.

Exactly once still holds: a message is marked "sending" before it is handed over. A child that
dies before taking a sub-batch leaves it unsent (retried like any outage); one that dies after
leaves it uncertain, as a worker crash would. The child dies with its worker (PDEATHSIG, and the
socket's end of file), so a killed worker cannot leave a sender running on its own.

    python -m scheduler.sender_process FD     # started by SenderProcess, never by hand
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import Connection

from providers.base import ProviderUnavailable, ProviderUncertain
from scheduler.sending import Outcome, Outgoing, new_event_loop, send_all

log = logging.getLogger("nurture.send")

#: How often a waiting worker checks that its sender is still alive.
POLL_SECONDS = 1.0
NOT_STARTED = "the sender process stopped before it took these messages"
UNFINISHED = "the sender process stopped after the messages were handed to it"
PR_SET_PDEATHSIG = 1


def portable(channel: object) -> bool:
    """Whether a channel may be handed to the sender: its own class (not a subclass, which may
    live in a module the child cannot import) says its state pickles and it sends async."""
    return bool(type(channel).__dict__.get("portable", False))


class PendingSend:
    """One sub-batch handed to the sender; `result()` waits for its outcomes."""

    def __init__(self, sender: SenderProcess, items: Sequence[Outgoing]) -> None:
        self.sender, self.items = sender, items
        self.outcomes: list[Outcome] | None = None

    def result(self) -> list[Outcome]:
        while self.outcomes is None:
            self.sender.receive_next()
        return self.outcomes


class SenderProcess:
    """The worker's side: starts the child on first use and again after it died.

    Sub-batches may be queued behind the one on the wire; the child takes them in order and
    answers in order, so if it dies before answering one, it never started those behind it."""

    def __init__(self, channels: dict[str, object], limits: dict[str, int]) -> None:
        self.channels, self.limits = channels, limits
        self._child: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._queued: deque[PendingSend] = deque()

    def submit(self, items: Sequence[Outgoing]) -> PendingSend:
        pending = PendingSend(self, items)
        frame = pickle.dumps(list(items), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self._connection().send_bytes(frame)
        except OSError as exc:  # it never got the whole sub-batch, so it sent none of it
            log.warning("the sender process is gone (%s); starting another", exc)
            while self._queued:  # what it answered before it went is still readable
                self.receive_next()
            self._discard()
            pending.outcomes = _all(items, ProviderUnavailable("engine", NOT_STARTED))
            return pending
        self._queued.append(pending)
        return pending

    def receive_next(self) -> None:
        """The oldest queued sub-batch's outcomes (they come back in the order handed over)."""
        conn, child, head = self._conn, self._child, self._queued[0]
        assert conn is not None and child is not None
        try:
            while not conn.poll(POLL_SECONDS):
                if child.poll() is not None:
                    raise EOFError(f"exit status {child.returncode}")
            head.outcomes = pickle.loads(conn.recv_bytes())
            self._queued.popleft()
        except (EOFError, OSError) as exc:
            log.error("the sender process stopped during a sub-batch (%s)", exc)
            head.outcomes = _all(head.items, ProviderUncertain("engine", UNFINISHED))
            self._queued.popleft()
            for behind in self._queued:
                behind.outcomes = _all(behind.items, ProviderUnavailable("engine", NOT_STARTED))
            self._queued.clear()
            self._discard()

    def close(self) -> None:
        """End of input: the child closes its pools and exits."""
        child = self._child
        if self._conn is not None:
            self._conn.close()
        self._conn = self._child = None
        if child is not None:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def _connection(self) -> Connection:
        if self._conn is None:
            ours, theirs = socket.socketpair()
            with theirs:
                self._child = subprocess.Popen(
                    [sys.executable, "-m", "scheduler.sender_process", str(theirs.fileno())],
                    pass_fds=(theirs.fileno(),),
                    stdin=subprocess.DEVNULL,
                )
            self._conn = Connection(ours.detach())
            setup = (self.channels, self.limits, logging.getLogger().getEffectiveLevel())
            self._conn.send_bytes(pickle.dumps(setup, protocol=pickle.HIGHEST_PROTOCOL))
        return self._conn

    def _discard(self) -> None:
        child = self._child
        if self._conn is not None:
            self._conn.close()
        self._conn = self._child = None
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()


def _all(items: Sequence[Outgoing], error: Exception) -> list[Outcome]:
    return [error for _ in items]  # type: ignore[misc]


# -- the child ----------------------------------------------------------------------------------
def _die_with_parent() -> None:
    """Linux: the kernel kills this process when the worker that started it dies."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def serve(conn: Connection) -> None:
    """Send each sub-batch that arrives and answer with its outcomes, until end of input."""
    channels, limits, level = pickle.loads(conn.recv_bytes())
    logging.basicConfig(level=level, format="%(levelname)s %(name)s (sender): %(message)s")
    loop = new_event_loop()
    try:
        while True:
            try:
                frame = conn.recv_bytes()
            except EOFError:
                break
            outcomes = loop.run_until_complete(send_all(pickle.loads(frame), channels, limits))
            conn.send_bytes(pickle.dumps(outcomes, protocol=pickle.HIGHEST_PROTOCOL))
    finally:
        for channel in channels.values():
            close = getattr(channel, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    loop.run_until_complete(close())
        loop.close()


def main() -> None:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the worker's to handle
    fd = int(sys.argv[1])
    if os.getppid() == 1:  # the worker died before PDEATHSIG was set
        return
    serve(Connection(fd))


if __name__ == "__main__":
    main()
