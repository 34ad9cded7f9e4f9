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


def test_in_a_flood_the_writer_gathers_as_many_as_its_last_batch_then_commits():
    """After a batch of several, the writer waits (up to busy_linger) until as many are queued,
    and commits as soon as they are: with a 30 s busy_linger this would time out if it waited
    the linger out, and commit [4] then [5] if it did not wait at all."""
    batches: list[list[int]] = []
    release = threading.Event()

    def write(batch):
        if not batches:
            release.wait(5)  # the first commit is "in flight" while 2 and 3 queue up
        batches.append(list(batch))

    writer = GroupCommitter("test-writer", write, busy_linger=30)
    writer.start()

    async def flood() -> None:
        writer.add(1)
        while writer.pending():  # the writer has taken 1 and is committing it
            await asyncio.sleep(0.001)
        writer.add(2)
        writer.add(3)
        release.set()
        while len(batches) < 2:
            await asyncio.sleep(0.001)
        await asyncio.wait_for(asyncio.gather(writer.commit(4), writer.commit(5)), 5)

    asyncio.run(flood())
    writer.stop()
    assert batches == [[1], [2, 3], [4, 5]]


def test_a_lone_write_is_committed_without_gathering():
    """A batch of one sets no wait: the next single write goes straight to its commit."""
    batches: list[list[int]] = []
    writer = GroupCommitter(
        "test-writer", lambda batch: batches.append(list(batch)), busy_linger=30
    )
    writer.start()

    async def one_by_one() -> None:
        for n in range(3):
            await asyncio.wait_for(writer.commit(n), 5)

    asyncio.run(one_by_one())
    writer.stop()
    assert batches == [[0], [1], [2]]
