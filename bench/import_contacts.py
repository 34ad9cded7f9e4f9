"""Import benchmark: rows/s and peak memory of `contacts.importer.import_csv`, beside a baseline.

The baseline, measured in the same run on the same file, is reading the CSV without validation
(the whole-file check plus one pass over the records). The import runs into a fresh database:
SQLite in a temporary folder by default, or PostgreSQL with --db (a scratch database is made).

    python bench/import_contacts.py                      # 200,000 rows, about a minute
    python bench/import_contacts.py --rows 1000000       # the issue's target: <= 45 s, <= 200 MB
    python bench/import_contacts.py --db postgresql://postgres@127.0.0.1:5432/postgres

Peak RSS is sampled every 50 ms over the importing process and its worker processes.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_contacts import write

from contacts.csvsource import inspect_csv
from contacts.importer import import_csv
from core.suppression_hash import SuppressionHasher
from storage.db import ensure_schema, make_engine, session_factory


class PeakMemory:
    """Peak memory, sampled in a thread: this process's RSS, and the PSS of it plus its workers.

    Workers are forked, so their RSS counts the pages they share with the parent again; PSS
    (proportional set size) splits shared pages between the processes and adds up honestly.
    """

    def __init__(self) -> None:
        self.me = psutil.Process()
        self.peak_self = self.peak_total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                own = self.me.memory_info().rss
                procs = [self.me, *self.me.children(recursive=True)]
                total = sum(p.memory_full_info().pss for p in procs)
            except psutil.Error:
                continue
            self.peak_self = max(self.peak_self, own)
            self.peak_total = max(self.peak_total, total)
            self._stop.wait(0.1)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _cpu_seconds() -> tuple[float, float]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def baseline(path: Path) -> tuple[float, int]:
    start = time.perf_counter()
    checked = inspect_csv(path)
    rows = sum(1 for _ in checked.records())
    return time.perf_counter() - start, rows


def scratch_postgres(admin_url: str) -> tuple[str, str]:
    import psycopg

    name = f"nurture_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    return name, f"{base}/{name}"


def drop_postgres(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--db", help="PostgreSQL admin URL; default a fresh SQLite file")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (0: none)")
    parser.add_argument("--folder", type=Path, default=Path("var/bench"))
    args = parser.parse_args()

    csv_path = args.folder / f"contacts-{args.rows}.csv"
    if not csv_path.exists():
        print(f"generating {csv_path} ...", flush=True)
        write(csv_path, args.rows)
    size_mb = csv_path.stat().st_size / 1e6

    with tempfile.TemporaryDirectory() as tmp:
        scratch = None
        if args.db:
            scratch, url = scratch_postgres(args.db)
        else:
            url = f"sqlite:///{tmp}/bench.db"
        try:
            engine = make_engine(url)
            ensure_schema(engine)
            sessions = session_factory(engine, SuppressionHasher.from_secret("bench"))
            base_seconds, rows = baseline(csv_path)
            with PeakMemory() as memory:
                cpu_before = _cpu_seconds()
                start = time.perf_counter()
                summary = import_csv(
                    sessions,
                    csv_path,
                    "bench",
                    workers=args.workers,
                    default_timezone="America/Los_Angeles",
                )
                seconds = time.perf_counter() - start
                cpu_self, cpu_workers = (
                    a - b for a, b in zip(_cpu_seconds(), cpu_before, strict=True)
                )
            engine.dispose()
        finally:
            if scratch:
                drop_postgres(args.db, scratch)

    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"file: {csv_path} ({rows:,} rows, {size_mb:.0f} MB), database: {url.split(':')[0]}, "
        f"cores: {os.cpu_count()}"
    )
    print(f"{'':28}{'seconds':>10}{'rows/s':>12}")
    print(f"{'baseline (read, no checks)':28}{base_seconds:>10.1f}{rows / base_seconds:>12,.0f}")
    print(f"{'import (check + write)':28}{seconds:>10.1f}{rows / seconds:>12,.0f}")
    print(f"import / baseline time: {seconds / base_seconds:.1f}x")
    print(
        f"CPU: importing process {cpu_self:.1f} s, workers {cpu_workers:.1f} s "
        f"({(cpu_self + cpu_workers) / rows * 1e6:.0f} µs per row in all); load average "
        f"{os.getloadavg()[0]:.1f} (other work on the machine slows the wall-clock figures)"
    )
    print(
        f"peak memory: importing process RSS {memory.peak_self / 1e6:.0f} MB "
        f"(getrusage {maxrss_mb:.0f} MB); with its workers, PSS {memory.peak_total / 1e6:.0f} MB"
    )
    print("counts:", ", ".join(f"{k} {v:,}" for k, v in summary.counts().items()))


if __name__ == "__main__":
    main()
