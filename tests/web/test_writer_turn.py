"""Writers of one SQLite database take turns through a lock file, across threads and processes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from storage.db import make_engine, writer_turn


def test_threads_take_turns(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'turns.db'}")
    inside, overlaps = [0], []

    def write() -> None:
        for _ in range(20):
            with writer_turn(engine):
                inside[0] += 1
                overlaps.append(inside[0])
                time.sleep(0.001)
                inside[0] -= 1

    threads = [threading.Thread(target=write) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max(overlaps) == 1
    assert (tmp_path / "turns.db-writers.lock").exists()


def test_another_process_waits_for_the_turn(tmp_path: Path) -> None:
    database = tmp_path / "turns.db"
    engine = make_engine(f"sqlite:///{database}")
    child = (
        "import sys, time; from storage.db import make_engine, writer_turn\n"
        f"engine = make_engine({f'sqlite:///{database}'!r})\n"
        "print('waiting', flush=True); started = time.monotonic()\n"
        "with writer_turn(engine): print(round(time.monotonic() - started, 2))\n"
    )
    with writer_turn(engine):
        process = subprocess.Popen(
            [sys.executable, "-c", child],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        assert process.stdout is not None
        assert process.stdout.readline() == "waiting\n"
        time.sleep(1.0)
        assert process.poll() is None  # still waiting for its turn
    out, _ = process.communicate(timeout=60)
    assert float(out) >= 0.5


def test_nothing_to_wait_for_in_memory() -> None:
    with writer_turn(make_engine("sqlite://")):
        pass
