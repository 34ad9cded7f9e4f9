"""web.group_commit: what waits is answered after its commit; the after-batch step (a WAL
checkpoint) runs once a batch is answered, and a failing one loses nothing."""

from __future__ import annotations

import asyncio
import threading

from web.group_commit import GroupCommitter


def test_after_batch_runs_once_the_batch_is_answered():
    written: list[list[int]] = []
    events: list[str] = []
    answered = threading.Event()

    def write(batch):
        written.append(list(batch))
        events.append("commit")

    def after_batch():
        answered.wait(5)  # the waiters' futures are settled before this step runs
        events.append("after")

    writer = GroupCommitter("test-writer", write, after_batch=after_batch)
    writer.start()

    async def one() -> None:
        await writer.commit(1)
        answered.set()

    asyncio.run(one())
    writer.stop()
    assert written == [[1]] and events == ["commit", "after"]


def test_a_failing_after_batch_step_loses_nothing():
    written: list[int] = []

    def after_batch():
        raise RuntimeError("checkpoint failed")

    writer = GroupCommitter("test-writer", written.extend, after_batch=after_batch)
    writer.start()
    for n in range(100):
        writer.add(n)

    async def last() -> None:
        await writer.commit(100)

    asyncio.run(last())
    writer.stop()
    assert written == list(range(101))
