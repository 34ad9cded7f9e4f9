"""Dispatch benchmark: due emails and texts end to end (claim → check → render → mark sending →
pooled provider call → record) against a fast loopback fake provider, beside a bare baseline.

The baseline is a loop posting the same payloads with the same HTTP client (the pooled aiohttp
session the SendGrid and Twilio channels use, same concurrency), so the ratio shows what the
engine's exactly-once bookkeeping, checks and rendering cost. Each channel is seeded by the bench,
then sent by a fresh worker process; its peak RSS is sampled from the bench's process as the
campaign is dispatched, to show it stays flat. The fake runs in its own process. The worker makes
its provider calls through its sender process (scheduler/sender_process.py), so the worker's RSS,
the sender's, and the two's PSS (shared pages counted once) are all printed.

    python bench/dispatch_bench.py                  # 10,000 emails + 10,000 texts on SQLite
    python bench/dispatch_bench.py --full           # 100,000 + 100,000
    python bench/dispatch_bench.py --db postgres    # on PostgreSQL (127.0.0.1, trust auth)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
from sqlalchemy import insert, select

from core.clock import FrozenClock
from core.settings import Settings, load_settings
from nurture.app import NurtureApp
from providers.base import OutgoingEmail, OutgoingSms
from providers.registry import email_channel, sms_channel
from scheduler.sending import SendLoop
from storage.db import transaction, upgrade
from storage.models import (
    Campaign,
    CampaignState,
    ConsentStatus,
    Contact,
    Enrollment,
    Message,
    Suppression,
    SuppressionReason,
)

NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)  # 10:00 in Los Angeles
SID = "AC" + "a" * 32
CHUNK = 5_000
BASELINE_POSTS = 30_000
#: What a worker says on its standard output right before and right after it dispatches.
DISPATCHING, DISPATCHED = "-- dispatching --", "-- dispatched --"


def start_fake(delay: float) -> tuple[subprocess.Popen[str], str]:
    fake = subprocess.Popen(
        [sys.executable, "-m", "providers.fakeserver", "--count-only", "--delay", str(delay)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert fake.stdout is not None
    line = fake.stdout.readline().strip()
    return fake, line.split("=", 1)[1]


def database(kind: str, folder: Path) -> tuple[str, str | None]:
    if kind == "sqlite":
        return f"sqlite:///{folder / 'bench.db'}", None
    import psycopg

    name = f"nurture_bench_{os.getpid()}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as db:
        db.execute(f"DROP DATABASE IF EXISTS {name}")
        db.execute(f"CREATE DATABASE {name}")
        # An SSD's planner cost, as the README advises (the default of 4 is for spinning disks;
        # with it, the per-sub-batch lookups of 200 ids hash-join whole tables below ~100k rows).
        db.execute(f"ALTER DATABASE {name} SET random_page_cost = 1.1")
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", name


def seed(app: NurtureApp, channel: str, count: int) -> None:
    """Contacts opted in to both channels, one campaign, one due message each (bulk inserts)."""
    from campaigns.definitions import Sequence

    template = "01-welcome" if channel == "email" else "02-cycle"
    sequence = Sequence.model_validate(
        {
            "name": f"bench-{channel}",
            "title": "bench",
            "template_folder": "spasm-relief",
            "audience": {"enroll_new_contacts": False},
            "steps": [{"name": "only", "channel": channel, "template": template}],
        }
    )
    with transaction(app.sessions) as session:
        campaign = Campaign(
            name=sequence.name,
            definition=sequence.snapshot(),
            state=CampaignState.ACTIVE,
            starts_at=NOW,
            launched_at=NOW,
        )
        session.add(campaign)
        session.flush()
        campaign_id = campaign.id
        first = (session.scalar(select(Contact.id).order_by(Contact.id.desc()).limit(1)) or 0) + 1
    for start in range(first, first + count, CHUNK):
        ids = range(start, min(start + CHUNK, first + count))
        with transaction(app.sessions) as session:
            conn = session.connection()
            conn.execute(
                insert(Contact),
                [
                    {
                        "id": n,
                        "first_name": "Pat",
                        "last_name": f"B{n}",
                        "email": f"pat{n}@example.com",
                        "phone": f"+1310{n:07d}",
                        "timezone": "America/Los_Angeles",
                        "email_consent": ConsentStatus.OPTED_IN,
                        "sms_consent": ConsentStatus.OPTED_IN,
                        "custom_fields": {},
                        "source": "bench",
                        "created_at": NOW,
                        "updated_at": NOW,
                    }
                    for n in ids
                ],
            )
            conn.execute(
                insert(Enrollment),
                [
                    {
                        "id": n,
                        "campaign_id": campaign_id,
                        "contact_id": n,
                        "state": "active",
                        "enrolled_at": NOW,
                        "planned_step": 0,
                    }
                    for n in ids
                ],
            )
            conn.execute(
                insert(Message),
                [
                    {
                        "id": n,
                        "enrollment_id": n,
                        "campaign_id": campaign_id,
                        "contact_id": n,
                        "step_index": 0,
                        "channel": channel,
                        "state": "planned",
                        "due_at": NOW,
                        "not_after": NOW + timedelta(hours=48),
                        "attempts": 0,
                        "updated_at": NOW,
                    }
                    for n in ids
                ],
            )


def seed_suppressions(db_url: str, count: int) -> None:
    """A suppression list of `count` other addresses, half email and half phone (people who left
    over the years): the send-time checks look each claimed address up in it."""
    from sqlalchemy import create_engine

    from core.suppression_hash import SuppressionHasher

    # Other people's addresses, never claimed: any key gives the lookups their real cost.
    address_hash = SuppressionHasher.from_secret("bench: addresses no contact has")
    rows = []
    for n in range(count):
        channel, address = ("email", f"gone{n}@example.org") if n % 2 else ("sms", f"+1424{n:07d}")
        rows.append(
            {
                "channel": channel,
                "address_hash": address_hash(channel, address),
                "address": address,
                "reason": SuppressionReason.UNSUBSCRIBED,
                "source": "bench",
                "created_at": NOW,
            }
        )
    engine = create_engine(db_url)
    with engine.begin() as connection:
        for start in range(0, len(rows), CHUNK):
            connection.execute(insert(Suppression), rows[start : start + CHUNK])
    engine.dispose()


class RssSampler(threading.Thread):
    """The worker's RSS, and its sender process's beside it, sampled from this (the bench's)
    process while the worker dispatches: the measuring costs the worker nothing, and adds
    nothing to its memory. The peaks of each, of the two together, and of their PSS (shared
    pages counted once) are all reported."""

    def __init__(self, worker: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(worker)
        self.peak = self.child_peak = self.total_peak = self.pss_peak = 0
        self.samples: list[int] = []
        self.running = True

    def run(self) -> None:
        tick = 0
        while self.running:
            with contextlib.suppress(psutil.Error):
                self.sample(pss=tick % 10 == 0)  # PSS reads smaps: twice a second
            tick += 1
            time.sleep(0.05)

    def sample(self, pss: bool) -> None:
        children = self.process.children()
        rss = self.process.memory_info().rss
        child = 0
        for process in children:
            with contextlib.suppress(psutil.Error):
                child += process.memory_info().rss
        self.peak = max(self.peak, rss)
        self.child_peak = max(self.child_peak, child)
        self.total_peak = max(self.total_peak, rss + child)
        self.samples.append(rss)
        if pss:
            shared = 0
            for process in (self.process, *children):
                with contextlib.suppress(psutil.Error):
                    shared += process.memory_full_info().pss
            self.pss_peak = max(self.pss_peak, shared)

    def stop(self) -> list[int]:
        self.running = False
        self.join()
        quarter = [0.0, 0.25, 0.5, 0.75, 1.0]
        samples = self.samples or [0]
        at = [samples[max(0, int(len(samples) * q) - 1)] for q in quarter]
        return [self.peak, self.child_peak, self.total_peak, self.pss_peak, *at]


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def dispatch(app: NurtureApp, channel: str, count: int) -> float:
    """One tick, which sends the whole campaign; the bench samples memory meanwhile (it starts
    when this process says DISPATCHING and stops when it says DISPATCHED)."""
    if app.dispatcher.sender is None:  # calls on the worker's own send loop: start it first
        app.dispatcher.loop.run(asyncio.sleep(0))
    worker = psutil.Process()
    print(DISPATCHING, flush=True)
    cpu = cpu_seconds(worker)
    started = time.perf_counter()
    result = app.dispatcher.tick()
    elapsed = time.perf_counter() - started
    busy = (cpu_seconds(worker) - cpu) / elapsed
    sender = sum(cpu_seconds(child) for child in worker.children()) / elapsed
    print(DISPATCHED, flush=True)
    print(
        f"  {channel}: worker process busy {busy:.0%} of one core, "
        f"its sender process {sender:.0%}, while dispatching"
    )
    assert result.sent == count, f"{channel}: sent {result.sent} of {count}: {result}"
    return elapsed


def baseline(app: NurtureApp, channel: str, count: int, concurrency: int) -> float:
    """The same payload, built once, posted `count` times through the same pooled client
    (PooledHttp, same concurrency): the HTTP cost alone, nothing of the engine."""
    from urllib.parse import urlencode

    from providers.sendgrid import build_mail
    from providers.twilio import form

    payload = getattr(app.dispatcher, f"sent_example_{channel}")
    target = email_channel(app.settings) if channel == "email" else sms_channel(app.settings)
    pool = target.pool  # type: ignore[attr-defined]  # SendGrid and Twilio have one
    if channel == "email":
        body = json.dumps(build_mail(payload).get()).encode()
    else:
        body = urlencode(form(payload)).encode()

    async def run() -> None:
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with gate:
                reply = await pool.post(target.url, data=body)  # type: ignore[attr-defined]
                assert reply.status < 300

        await asyncio.gather(*(one() for _ in range(count)))
        await pool.aclose()

    loop = SendLoop()
    started = time.perf_counter()
    loop.run(run())
    elapsed = time.perf_counter() - started
    loop.close()
    return elapsed


def example(app: NurtureApp, channel: str) -> OutgoingEmail | OutgoingSms:
    from campaigns.definitions import Sequence

    with transaction(app.sessions, immediate=False) as session:
        definition = session.scalar(
            select(Campaign.definition).where(Campaign.name == f"bench-{channel}")
        )
    sequence = Sequence.from_snapshot(definition)
    return app.composer.compose(
        sequence,
        sequence.steps[0],
        {"first_name": "Pat", "last_name": "B", "custom_fields": {}},
        message_id=1,
        contact_id=1,
        to="pat1@example.com" if channel == "email" else "+13100000001",
        campaign=sequence.name,
    )


def bench_settings(args: argparse.Namespace) -> Settings:
    return load_settings(
        database={"url": args.db_url},
        outbox={"dir": str(Path(args.folder) / "outbox")},
        email={"provider": "sendgrid"},
        sms={"provider": "twilio", "segments_per_second": 1e9},
        sendgrid={
            "api_host": args.fake_url,
            "emails_per_second": 1e9,
            "concurrency": args.concurrency,
        },
        twilio={"api_base_url": args.fake_url, "concurrency": args.concurrency},
        scheduler={
            "batch_size": args.batch,
            "sms_frequency_cap_hours": 24,
            "sender_process": args.sender_process,
        },
    )


def run_channel(args: argparse.Namespace) -> None:
    """One channel's worker, in a fresh process on a seeded database, as a `nurture worker`
    starts: its memory is that of a worker sending this campaign, nothing left over from
    seeding or from another campaign."""
    import nurture.cli.main  # noqa: F401  (what a `nurture worker` process holds, CLI included)

    channel, count = args.channel, args.count
    app = NurtureApp(settings=bench_settings(args), clock=FrozenClock(NOW))
    app.migrate()  # already at head: a no-op that imports nothing more
    elapsed = dispatch(app, channel, count)
    setattr(app.dispatcher, f"sent_example_{channel}", example(app, channel))
    # The bare loop's speed swings by a third from run to run on a shared machine: its best of
    # three (over up to 30,000 posts each), so the ratio errs against the engine.
    sample = min(count, BASELINE_POSTS)
    base = count / max(sample / baseline(app, channel, sample, args.concurrency) for _ in range(3))
    app.dispatcher.shutdown()
    app.dispose()
    print(json.dumps([elapsed, base]))


def seed_channel(args: argparse.Namespace) -> float:
    """The channel's contacts and due messages, seeded from this process (not the worker's)."""
    app = NurtureApp(settings=bench_settings(args), clock=FrozenClock(NOW))
    started = time.perf_counter()
    seed(app, args.channel, args.count)
    seeded = time.perf_counter() - started
    app.dispose()
    return seeded


def run_worker(args: argparse.Namespace) -> list[object]:
    """Seed the channel, then run its worker in a fresh process, sampling its memory while it
    dispatches; one row of the report."""
    seeded = seed_channel(args)
    command = [sys.executable, __file__, "--channel", args.channel, "--count", str(args.count)]
    command += ["--db-url", args.db_url, "--fake-url", args.fake_url, "--folder", args.folder]
    command += ["--concurrency", str(args.concurrency), "--batch", str(args.batch)]
    if not args.sender_process:
        command.append("--no-sender-process")
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    sampler = RssSampler(child.pid)
    lines = []
    for line in child.stdout:
        if line.strip() == DISPATCHING:
            sampler.start()
        elif line.strip() == DISPATCHED:
            memory = sampler.stop()
        else:
            lines.append(line.rstrip("\n"))
    if child.wait() != 0:
        raise SystemExit(f"the {args.channel} worker failed (exit status {child.returncode})")
    print("\n".join(lines[:-1]))
    elapsed, base = json.loads(lines[-1])
    return [args.channel, args.count, seeded, elapsed, base, memory]


def main() -> None:
    parser = argparse.ArgumentParser(description="Dispatch benchmark")
    parser.add_argument("--emails", type=int, default=10_000)
    parser.add_argument("--texts", type=int, default=10_000)
    parser.add_argument("--full", action="store_true", help="100,000 emails and 100,000 texts")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--batch", type=int, default=500, help="scheduler.batch_size")
    parser.add_argument(
        "--fake-delay", type=float, default=0.0, help="seconds the fake takes to answer"
    )
    parser.add_argument(
        "--suppressions", type=int, default=10_000, help="other addresses on the suppression list"
    )
    parser.add_argument(
        "--sender-process",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="[scheduler] sender_process: provider calls in the worker's child process",
    )
    for internal in ("--channel", "--count", "--db-url", "--fake-url", "--folder"):
        parser.add_argument(internal, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("NURTURE_SECRET_KEY", "bench-secret-key-0123456789abcdef")
    os.environ.update(
        {"SENDGRID_API_KEY": "SG.bench", "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "bench"}
    )
    if args.channel:
        args.count = int(args.count)
        run_channel(args)
        return
    if args.full:
        args.emails = args.texts = 100_000
    fake, args.fake_url = start_fake(args.fake_delay)
    args.folder = tempfile.mkdtemp(prefix="nurture-bench-")
    args.db_url, pg_name = database(args.db, Path(args.folder))
    try:
        upgrade(args.db_url)
        seed_suppressions(args.db_url, args.suppressions)
        print(
            f"dispatch benchmark: {args.emails:,} emails + {args.texts:,} texts, "
            f"{args.db}, concurrency {args.concurrency}, batch {args.batch}, "
            f"{args.suppressions:,} suppressed addresses, fake answers after "
            f"{args.fake_delay * 1000:g} ms, {psutil.cpu_count()} cores, sender process "
            f"{'on' if args.sender_process else 'off'}; "
            "each channel in a fresh worker process"
        )
        rows = []
        for channel, count in (("email", args.emails), ("sms", args.texts)):
            if count:
                args.channel, args.count = channel, count
                rows.append(run_worker(args))
        print(
            f"{'channel':8} {'messages':>9} {'engine msg/s':>13} {'baseline msg/s':>15} "
            f"{'ratio':>6} {'peak RSS':>9} {'sender':>7} {'both':>7} {'PSS':>6}  "
            "worker RSS at 0/25/50/75/100% of the run"
        )
        for channel, count, seeded, elapsed, base, memory in rows:
            worker, sender, both, pss, *quarter = (size / 2**20 for size in memory)
            print(
                f"{channel:8} {count:>9,} {count / elapsed:>13,.0f} {count / base:>15,.0f} "
                f"{base / elapsed:>6.0%} {worker:>7.0f}MB {sender:>5.0f}MB {both:>5.0f}MB "
                f"{pss:>4.0f}MB  "
                + " / ".join(f"{q:.0f}" for q in quarter)
                + f" MB   (seeded in {seeded:.1f}s)"
            )
    finally:
        fake.terminate()
        fake.wait()
        if pg_name:
            import psycopg

            with psycopg.connect(
                "postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True
            ) as db:
                db.execute(f"DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)")


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
