"""The launch benchmark (bench/launch_bench.py) still runs end to end on a few hundred CSV rows:
import, launch and a `nurture worker` through the CLI, until every enrolled contact's email is
accepted. Its figures are measured by running it, never asserted here; what is asserted is that
every email went out and the worker's log had no WARNING."""

from __future__ import annotations

import re
import subprocess
import sys

from core.settings import REPO_ROOT

ENGINE = re.compile(r"^engine, first to last\s+(?P<sent>[\d,]+)\s+(?P<rate>[\d,]+)", re.MULTILINE)
ENROLLED = re.compile(r"nurture campaigns launch .*\((?P<enrolled>[\d,]+) enrolled\)")


def test_the_launch_benchmark_sends_every_enrolled_email_with_a_quiet_worker() -> None:
    done = subprocess.run(
        [sys.executable, "bench/launch_bench.py", "--rows", "300", "--limit", "120"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    engine, enrolled = ENGINE.search(done.stdout), ENROLLED.search(done.stdout)
    assert engine and enrolled, done.stdout
    assert engine["sent"] == enrolled["enrolled"] and int(engine["rate"].replace(",", "")) > 0
    assert "0 WARNING line(s) logged" in done.stdout
    assert re.search(r"^baseline \(bare loop\)\s+[\d,]+\s+[\d,]+", done.stdout, re.MULTILINE)
