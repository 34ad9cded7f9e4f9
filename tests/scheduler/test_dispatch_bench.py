"""The dispatch benchmark (bench/dispatch_bench.py) still runs end to end, on a few hundred
messages: it seeds, starts a worker per channel, samples its memory from outside and prints one
row per channel. Its figures are measured by running it, never asserted here."""

from __future__ import annotations

import re
import subprocess
import sys

from core.settings import REPO_ROOT

ROW = re.compile(
    r"^(?P<channel>email|sms)\s+(?P<count>[\d,]+)\s+(?P<rate>[\d,]+)\s+(?P<base>[\d,]+)\s+"
    r"(?P<ratio>\d+)%\s+(?P<rss>\d+)MB\s+(?P<sender>\d+)MB\s+(?P<both>\d+)MB\s+(?P<pss>\d+)MB\s+"
    r"(?P<quarters>\d+( / \d+){4}) MB",
    re.MULTILINE,
)


def test_the_dispatch_benchmark_sends_every_message_and_reports_each_channel() -> None:
    small = ["--emails", "300", "--texts", "200", "--suppressions", "50", "--fake-delay", "0.002"]
    done = subprocess.run(
        [sys.executable, "bench/dispatch_bench.py", *small],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "fake answers after 2 ms" in done.stdout
    rows = {match["channel"]: match for match in ROW.finditer(done.stdout)}
    assert sorted(rows) == ["email", "sms"], done.stdout
    assert rows["email"]["count"] == "300" and rows["sms"]["count"] == "200"
    for row in rows.values():
        assert int(row["rate"].replace(",", "")) > 0 and int(row["ratio"]) > 0
        # the worker and its sender process were both sampled while the campaign went out
        assert 0 < int(row["rss"]) <= int(row["both"]) and int(row["sender"]) > 0
        assert all(int(size) > 0 for size in row["quarters"].split(" / "))
    assert "email: worker process busy" in done.stdout and "sms: worker process busy" in done.stdout
