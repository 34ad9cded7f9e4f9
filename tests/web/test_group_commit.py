"""web.group_commit: what waits is answered after its commit, a failed batch is written one by
one so a bad row fails alone, and in a flood the writer gathers a batch before committing."""

from __future__ import annotations

import asyncio
import threading

from web.group_commit import GroupCommitter


def test_a_waiter_is_answered_after_its_commit_and_a_bad_row_fails_alone():
    committed: list[int] = []

    def write(batch):
        if -1 in batch:
            raise ValueError("bad row")
        committed.extend(batch)

    writer = GroupCommitter("test-writer", write)
    writer.start()

    async def both() -> list[object]:
        good = writer.commit(1)
        bad = writer.commit(-1)
        results = await asyncio.gather(good, bad, return_exceptions=True)
        assert committed == [1]  # the good one was committed before its answer came back
        return results

    results = asyncio.run(both())
    writer.stop()
    assert results[0] is None and isinstance(results[1], ValueError)


def test_queued_writes_are_drained_on_stop():
    written: list[int] = []
    writer = GroupCommitter("test-writer", written.extend, linger=0.5)
    writer.start()
    for n in range(100):
        writer.add(n)
    writer.stop()
    assert written == list(range(100))


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
