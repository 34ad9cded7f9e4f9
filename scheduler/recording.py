"""Recording sub-batches' outcomes beside the dispatch, on PostgreSQL.

A worker's dispatch is a chain of database round trips and rendering: claim, check, mark
"sending", hand over, record. On PostgreSQL each round trip waits on the server, and recording a
sub-batch (one guarded UPDATE per message, every index of `messages` rewritten) was a fifth of a
worker's time, with its CPU idle. Recorded on a thread of its own with its own connection, it
overlaps the rendering and marking of the next sub-batch.

What stays true:
- at most one sub-batch is being recorded at a time, and each is recorded before the one after
  it (a submit waits for the one before), so a crash leaves "sending" only one sub-batch more
  than the dispatcher's IN_FLIGHT bound, and recovery makes those "uncertain", never re-sent;
- a failure is not hidden: it is raised in the dispatching thread at its next submit or drain,
  and the outcomes that could not be written are logged with their provider ids for staff;
- counts land in the tally of whoever waits for them (the batch, or the tick's total at its end).

SQLite has one writer: a second writing thread would only queue for the lock (with SQLite's
sleeping busy handler), so there the recording stays in the dispatching thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from scheduler.outcomes import Tally
from scheduler.sending import Outcome, Outgoing

log = logging.getLogger("nurture.dispatch")

Sent = list[tuple[Outgoing, Outcome]]


class Recorder:
    """Runs `record(sent, tally)` for each sub-batch: in the caller's thread, or (`overlap`) on
    one background thread, one sub-batch at a time."""

    def __init__(self, record: Callable[[Sent, Tally], None], *, overlap: bool) -> None:
        self.record = record
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="recorder") if overlap else None
        self._pending: tuple[Future[None], Tally] | None = None

    def submit(self, sent: Sent, tally: Tally) -> None:
        """Record `sent`; with overlap, once the sub-batch before it is recorded (its counts go
        to `tally`), and without waiting for this one."""
        if self._pool is None:
            self.record(sent, tally)
            return
        self.drain(tally)
        counts = Tally()
        self._pending = (self._pool.submit(self._record_logged, sent, counts), counts)

    def drain(self, tally: Tally) -> None:
        """Wait for the sub-batch being recorded (its counts go to `tally`); raises its error."""
        if self._pending is None:
            return
        future, counts = self._pending
        self._pending = None
        future.result()
        tally.add(counts)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def _record_logged(self, sent: Sent, tally: Tally) -> None:
        try:
            self.record(sent, tally)
        except Exception:
            log.exception("could not record the outcomes of %d message(s)", len(sent))
            for item, outcome in sent:
                log.error("message %d: %s", item.message_id, outcome)
            raise
