"""web.sqlite_rows.Checkpointer: checkpoints run beside the writers' commits, and the WAL still
starts over from its beginning instead of growing by every page written."""

from __future__ import annotations

import os
import sqlite3
import threading

from web.sqlite_rows import Checkpointer, WriterConnection

PAGE = 4096
FRAME = PAGE + 24  # a WAL frame: its header and one page


def _writer(path: str) -> WriterConnection:
    writer = WriterConnection(path, synchronous="FULL")
    writer.quiet_checkpoints = True
    with writer.transaction() as raw:
        raw.execute("CREATE TABLE t (x BLOB)")
    return writer


def _write(writer: WriterConnection, rows: int = 5) -> None:
    with writer.transaction() as raw:
        raw.executemany("INSERT INTO t VALUES (randomblob(3000))", [()] * rows)


def test_after_commit_hands_the_checkpoint_to_the_thread(tmp_path):
    path = str(tmp_path / "c.db")
    writer = _writer(path)
    checkpointer = Checkpointer(path, interval=60)
    where: list[str] = []
    done = threading.Event()
    real = checkpointer.checkpoint

    def checkpoint(*, wait: bool = True) -> None:
        real(wait=wait)
        where.append(threading.current_thread().name)
        done.set()

    checkpointer.checkpoint = checkpoint  # type: ignore[method-assign]
    checkpointer.start()
    assert done.wait(5)  # the thread's first checkpoint
    done.clear()
    _write(writer)
    checkpointer.after_commit()
    assert done.wait(5)
    checkpointer.stop()
    writer.close()
    assert threading.current_thread().name not in where[:2]
    assert where[:2] == ["wal-checkpoint", "wal-checkpoint"]


def test_the_wal_starts_over_under_steady_writes(tmp_path):
    """Each commit followed by after_commit, as the group-commit writer does: once the WAL is
    restart_frames long the writer checkpoints it itself, and its next transaction begins the
    WAL again from the start, so the file stays near that length."""
    path = str(tmp_path / "c.db")
    writer = _writer(path)
    checkpointer = Checkpointer(path, interval=60, restart_frames=20)
    checkpointer.start()
    for _ in range(200):  # ~5 frames a transaction: 1,000 frames written in all
        _write(writer)
        checkpointer.after_commit()
    wal_bytes = os.path.getsize(path + "-wal")  # (closing the last connection deletes it)
    checkpointer.stop()
    writer.close()
    assert checkpointer.restarts > 0
    assert wal_bytes < 100 * FRAME
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM t").fetchone()[0] == 1000


def test_without_its_thread_after_commit_checkpoints_in_place(tmp_path):
    path = str(tmp_path / "c.db")
    writer = _writer(path)
    checkpointer = Checkpointer(path)  # not started: outside a lifespan
    _write(writer)
    checkpointer.after_commit()
    assert checkpointer.wal_frames == 0 and checkpointer.restarts == 1
    checkpointer.stop()
    writer.close()
