"""Load test of the recipient hot paths with wrk, against `nurture web` as users run it.

    python bench/web_bench.py            # 1,000,000 contacts (built once, cached in var/bench/)
    python bench/web_bench.py --contacts 100000 --duration 5 --workers 2

Measures, on a database of N contacts each with one sent email:
  * click redirect: GET /l/{token}, a different message per request (tokens rotate in a Lua script);
  * durable one-click unsubscribe: POST /u/{token} `List-Unsubscribe=One-Click`, a different
    contact per request, each committed (SQLite synchronous=FULL) before its 200.
Both are plain FastAPI routes behind the app's middleware (access log, body-size limit, proxy
headers), served by `nurture web --workers N` (uvicorn's own worker processes; default 2, one a
core). Beside each, the same wrk command against a plain Starlette route under uvicorn with as
many workers (no database, no signature, no middleware) in the same run: the ceiling for the
server on this machine.
After the runs the server is stopped with SIGTERM and the rows are counted: every click answered
must be in `events` (drained on shutdown), every unsubscribe answered in `suppressions`.
Each is run twice: flat out (as many requests as the server answers, on 50 connections: the
most it serves), then paced at the floor's rate (the Lua script releases requests on a clock,
as wrk2's -R does), where its p99 is the latency a recipient sees at that load. Flat out, a
closed-loop load's latency is mostly its own queue (50 connections over N req/s wait 50/N s on
average), so there the p99 says more about the connection count than about the server.
Floors (2 cores): clicks >= 5,000 req/s, with p99 <= 20 ms at 5,000 req/s;
unsubscribes >= 1,000 req/s, with p99 <= 50 ms at 1,000 req/s.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRET = "bench-secret-key-0123456789abcdef"
FLOORS = {"click": (5_000, 20.0), "unsubscribe": (1_000, 50.0)}  # req/s at least, p99 ms at most
CAMPAIGN = "bench"


# -- the database ---------------------------------------------------------------------------------
def cache_path(contacts: int) -> Path:
    """Keyed by the schema's newest migration, so a new one builds a fresh database."""
    from storage.db import head_revision

    key = hashlib.sha256(head_revision().encode()).hexdigest()[:10]
    return ROOT / "var/bench" / f"web-{contacts}-{key}.db"


def build_database(path: Path, contacts: int) -> None:
    """Schema by Alembic, then rows by plain executemany in one transaction per table."""
    from campaigns.definitions import Sequence
    from storage.db import make_engine, upgrade
    from storage.models import Base

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    upgrade(f"sqlite:///{partial}")
    make_engine(f"sqlite:///{partial}").dispose()
    now = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
    sequence = Sequence(
        name=CAMPAIGN,
        title="Benchmark",
        template_folder="spasm-relief",
        steps=[{"name": "welcome", "channel": "email", "template": "01-welcome"}],
    )
    db = sqlite3.connect(partial)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    tables = Base.metadata.tables
    started = time.perf_counter()
    _bulk(
        db,
        tables["campaigns"],
        [
            {
                "id": 1,
                "name": CAMPAIGN,
                "definition": sequence.snapshot(),
                "state": "active",
                "created_at": now,
                "launched_at": now,
            }
        ],
    )
    _bulk(
        db,
        tables["contacts"],
        (
            {
                "id": i,
                "first_name": "Pat",
                "last_name": f"Bench{i}",
                "email": f"pat{i}@example.com",
                "phone": f"+1310{i:07d}",
                "timezone": "America/Los_Angeles",
                "email_consent": "opted_in",
                "sms_consent": "opted_in",
                "created_at": now,
                "updated_at": now,
            }
            for i in range(1, contacts + 1)
        ),
        vary=("id", "last_name", "email", "phone"),
    )
    _bulk(
        db,
        tables["enrollments"],
        (
            {
                "id": i,
                "campaign_id": 1,
                "contact_id": i,
                "state": "active",
                "enrolled_at": now,
                "planned_step": 0,
            }
            for i in range(1, contacts + 1)
        ),
        vary=("id", "contact_id"),
    )
    _bulk(
        db,
        tables["messages"],
        (
            {
                "id": i,
                "enrollment_id": i,
                "campaign_id": 1,
                "contact_id": i,
                "step_index": 0,
                "channel": "email",
                "state": "sent",
                "due_at": now,
                "sent_at": now,
                "provider": "outbox",
                "provider_message_id": f"bench-{i}",
                "attempts": 1,
                "updated_at": now,
            }
            for i in range(1, contacts + 1)
        ),
        vary=("id", "enrollment_id", "contact_id", "provider_message_id"),
    )
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    partial.rename(path)
    print(f"built {path.name}: {contacts:,} contacts in {time.perf_counter() - started:.1f} s")


def _bulk(db: sqlite3.Connection, table: Any, rows: Any, vary: tuple[str, ...] = ()) -> None:
    """Insert rows fast: values (and column defaults) are converted once, from the first row,
    by SQLAlchemy's own bind processors; only the `vary` columns change from row to row."""
    from sqlalchemy.dialects import sqlite as sqlite_dialect

    dialect = sqlite_dialect.dialect()
    rows = iter(rows)
    first = next(rows)
    template: dict[str, Any] = {}
    for column in table.columns:
        value = first.get(column.name)
        if value is None and column.default is not None and not column.nullable:
            default = column.default.arg
            value = default(None) if callable(default) else default
        if value is None:
            continue
        processor = column.type.bind_processor(dialect)
        template[column.name] = processor(value) if processor else value
    names = list(template)
    positions = [names.index(name) for name in vary]
    base = [template[name] for name in names]
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"

    def values() -> Any:
        for row in (first, *rows):
            out = list(base)
            for name, position in zip(vary, positions, strict=True):
                out[position] = row[name]
            yield out

    db.executemany(sql, values())


# -- load generation ------------------------------------------------------------------------------
#: Releases requests at `rate` a second per wrk thread (its own clock through LuaJIT's ffi:
#: wrk's Lua has no millisecond clock); the returned delay is how long the next request waits.
PACED = """local ffi = require("ffi")
ffi.cdef[[
typedef struct {{ long tv_sec; long tv_nsec; }} bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local interval, next_at = {interval}, nil
function delay()
  ffi.C.clock_gettime(1, ts)
  local now = tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
  if next_at == nil then next_at = now end
  next_at = next_at + interval
  if next_at < now then return 0 end
  return next_at - now
end
"""


def lua_script(
    path: Path, paths: list[str], method: str, body: str | None, rate: float | None = None
) -> Path:
    """A wrk script cycling through `paths`; with `rate`, paced to that many requests a second
    per wrk thread."""
    lines = [PACED.format(interval=1000 / rate)] if rate else []
    lines += ["local paths = {"]
    lines += [f'"{p}",' for p in paths]
    lines += ["}", "local i = 0", f'wrk.method = "{method}"']
    if body is not None:
        lines += [
            f'wrk.body = "{body}"',
            'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"',
        ]
    lines += [
        "request = function()",
        "  i = i + 1",
        "  return wrk.format(nil, paths[(i % #paths) + 1])",
        "end",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_wrk(
    url: str, script: Path, args: argparse.Namespace, duration: float, connections: int
) -> dict[str, Any]:
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{connections}",
        f"-d{duration:g}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if "Requests/sec" not in done.stdout:
        raise SystemExit(f"wrk failed against {url}:\n{done.stdout}{done.stderr}")
    return {"command": " ".join(command), **parse_wrk(done.stdout)}


def parse_wrk(output: str) -> dict[str, Any]:
    def ms(text: str) -> float:
        number, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    # Anchored to the latency distribution's lines: a "+/- Stdev" column such as 72.50% or
    # 85.99% also ends in "50%" or "99%".
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    return {
        "rps": rps,
        "p50": p50,
        "p99": p99,
        "requests": total,
        "non_2xx_3xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


# -- servers ------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(command: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    log = (ROOT / "var/bench" / f"server-{port}.log").open("wb")
    # A session of its own: its worker processes are stopped with it (`stop`, `kill`).
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stderr=log, stdout=log, start_new_session=True
    )
    process.log_path = log.name  # type: ignore[attr-defined]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            time.sleep(0.5)
            if process.poll() is not None:  # something else answered on that port
                raise SystemExit(f"server exited with {process.returncode}") from None
            return process
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"server exited with {process.returncode}") from None
            time.sleep(0.2)
    kill(process)
    raise SystemExit(f"server did not start:\n{Path(process.log_path).read_text()[-4000:]}")  # type: ignore[attr-defined]


def kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(60)


def stop(process: subprocess.Popen[bytes]) -> str:
    """SIGTERM (a clean shutdown: the writers drain), then the server's log."""
    process.send_signal(signal.SIGTERM)
    process.wait(60)
    log_path = Path(process.log_path)  # type: ignore[attr-defined]
    text = log_path.read_text(errors="replace")
    log_path.unlink()
    return text


def baseline_app() -> Any:
    """A plain Starlette app: the same routes with no work behind them."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, RedirectResponse, Response
    from starlette.routing import Route

    async def click(request: Request) -> Response:
        return RedirectResponse("https://spinaldecompressionla.com/book?utm_source=x", 302)

    async def unsubscribe(request: Request) -> Response:
        await request.body()
        return PlainTextResponse("Unsubscribed.\n")

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/l/{token}", click),
            Route("/u/{token}", unsubscribe, methods=["POST"]),
            Route("/healthz", health),
        ]
    )


def serve_baseline(port: int, workers: int) -> None:
    import uvicorn

    uvicorn.run(
        "web_bench:baseline_app",
        factory=True,
        app_dir=str(Path(__file__).parent),
        workers=workers,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        timeout_worker_healthcheck=30,  # as nurture web's (a busy machine starts slowly)
    )


# -- the run -------------------------------------------------------------------------------------
def count(db_path: Path, sql: str) -> int:
    with sqlite3.connect(db_path) as db:
        return int(db.execute(sql).fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument(
        "--unsubscribe-connections",
        type=int,
        default=50,
        help="wrk connections for the unsubscribe runs (more in flight = bigger group commits)",
    )
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "--workers", type=int, default=2, help="server processes (nurture web --workers)"
    )
    parser.add_argument("--tokens", type=int, default=200_000, help="distinct URLs per test")
    parser.add_argument("--serve-baseline", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline:
        serve_baseline(args.serve_baseline, args.workers)
        return
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")

    from templates.links import LinkSigner

    cached = cache_path(args.contacts)
    if not cached.exists():
        for stale in cached.parent.glob(f"web-{args.contacts}-*.db"):
            stale.unlink()  # built for an older schema
        build_database(cached, args.contacts)
    work = ROOT / "var/bench/web-run.db"
    for suffix in ("", "-wal", "-shm", "-writers.lock"):
        Path(f"{work}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(cached, work)
    with work.open("rb") as copied:  # not the server's first fsync's job: it would stall a run
        os.fsync(copied.fileno())

    base = "http://bench.invalid"  # the paths are what the Lua scripts need
    signer = LinkSigner(SECRET, base, 400)
    rng = random.Random(7)
    n = min(args.tokens, args.contacts)
    click_ids = rng.sample(range(1, args.contacts + 1), n)
    unsub_ids = rng.sample(range(1, args.contacts + 1), n)
    scripts = ROOT / "var/bench"
    clicks_lua = lua_script(
        scripts / "clicks.lua",
        [signer.click_url(i, "booking")[len(base) :] for i in click_ids],
        "GET",
        None,
    )
    unsub_paths = [signer.unsubscribe_url(i, "email")[len(base) :] for i in unsub_ids]
    unsub_lua = lua_script(
        scripts / "unsubscribes.lua", unsub_paths, "POST", "List-Unsubscribe=One-Click"
    )
    # Paced at the floors' rates; the unsubscribes go to other contacts than the flat-out run's.
    paced_clicks = lua_script(
        scripts / "clicks-paced.lua",
        [signer.click_url(i, "booking")[len(base) :] for i in click_ids],
        "GET",
        None,
        FLOORS["click"][0] / args.threads,
    )
    paced_unsubs = lua_script(
        scripts / "unsubscribes-paced.lua",
        [signer.unsubscribe_url(i, "sms")[len(base) :] for i in unsub_ids],
        "POST",
        "List-Unsubscribe=One-Click",
        FLOORS["unsubscribe"][0] / args.threads,
    )

    env = {
        **os.environ,
        "NURTURE_DATABASE__URL": f"sqlite:///{work}",
        "NURTURE_SECRET_KEY": SECRET,
        "NURTURE_LOG_LEVEL": "INFO",
        "COLUMNS": "250",  # the server logs through rich; keep each line on one line
    }
    results: dict[str, dict[str, Any]] = {}
    base_port = free_port()
    baseline = start(
        [
            sys.executable,
            __file__,
            "--serve-baseline",
            str(base_port),
            "--workers",
            str(args.workers),
        ],
        env,
        base_port,
    )
    try:
        for name, script, conns in (
            ("click", clicks_lua, args.connections),
            ("unsubscribe", unsub_lua, args.unsubscribe_connections),
        ):
            url = f"http://127.0.0.1:{base_port}"
            run_wrk(url, script, args, args.warmup, conns)
            results[f"baseline {name}"] = run_wrk(url, script, args, args.duration, conns)
    finally:
        stop(baseline)

    # Chosen only now: a port picked before the baseline's runs could be taken by then.
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env["NURTURE_WEB__PUBLIC_BASE_URL"] = base
    server = start(
        [
            sys.executable,
            "-m",
            "nurture.cli.main",
            "web",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ],
        env,
        port,
    )
    try:
        warm = run_wrk(base, clicks_lua, args, args.warmup, args.connections)
        results["nurture click"] = run_wrk(base, clicks_lua, args, args.duration, args.connections)
        results["nurture unsubscribe"] = run_wrk(
            base, unsub_lua, args, args.duration, args.unsubscribe_connections
        )
        results["nurture click, paced"] = run_wrk(
            base, paced_clicks, args, args.duration, args.connections
        )
        results["nurture unsubscribe, paced"] = run_wrk(
            base, paced_unsubs, args, args.duration, args.unsubscribe_connections
        )
    except BaseException:
        print("server log (tail):\n" + stop(server)[-4000:], file=sys.stderr)
        raise
    server_log = stop(server)
    for line in server_log.splitlines():
        if "-writer:" in line:
            print("server:", " ".join(line.split()))

    clicks = count(work, "SELECT count(*) FROM events WHERE kind = 'clicked'")
    suppressed = count(work, "SELECT count(*) FROM suppressions")
    report(args, results, clicks - warm["requests"], suppressed)


def report(
    args: argparse.Namespace, results: dict[str, dict[str, Any]], clicks: int, suppressed: int
) -> None:
    print(
        f"\nweb benchmark: {args.contacts:,} contacts, {args.workers} server processes, "
        f"{os.cpu_count()} CPUs, {args.duration:g} s per run, loopback"
    )
    print(f"{'':24}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx/3xx':>13}")
    for name, row in results.items():
        print(
            f"{name:24}{row['rps']:>10,.0f}{row['p50']:>9.2f}{row['p99']:>9.2f}"
            f"{row['non_2xx_3xx']:>13}"
        )
    for name, (rps, p99) in FLOORS.items():
        flat, paced = results[f"nurture {name}"], results[f"nurture {name}, paced"]
        # Paced: the offered rate was served (a few requests short of it is the clock's edges).
        served = paced["rps"] >= 0.97 * rps
        held = (
            flat["rps"] >= rps
            and served
            and paced["p99"] <= p99
            and flat["non_2xx_3xx"] == paced["non_2xx_3xx"] == 0
        )
        print(
            f"{name}: {flat['rps']:,.0f} req/s flat out (floor {rps:,}); at {paced['rps']:,.0f} "
            f"req/s paced, p99 {paced['p99']:.1f} ms (floor {p99} at {rps:,}); flat out, p99 "
            f"{flat['p99']:.1f} ms: {'holds' if held else 'BELOW THE FLOOR'}"
        )
    answered = results["nurture click"]["requests"] + results["nurture click, paced"]["requests"]
    unsubscribed = (
        results["nurture unsubscribe"]["requests"]
        + results["nurture unsubscribe, paced"]["requests"]
    )
    print(
        f"clicks answered: {answered:,}; click rows written "
        f"(after SIGTERM, warm-up excluded): {clicks:,}"
    )
    print(f"unsubscribes answered: {unsubscribed:,}; suppression rows: {suppressed:,}")
    print("load command:", results["nurture click"]["command"])
    print("load command:", results["nurture unsubscribe"]["command"])
    print(
        json.dumps(
            {
                name: {k: v for k, v in row.items() if k != "command"}
                for name, row in results.items()
            }
        )
    )


if __name__ == "__main__":
    main()
