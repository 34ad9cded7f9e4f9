"""Report speed: what one staff page view costs on a large database, beside a full-scan baseline.

Builds contacts, one big campaign enrolling every contact (a message per contact for step 1,
half of them for step 2, clicks for a tenth) and a small second campaign, then times each query
a campaign page runs (funnel, daily series, 7-day schedule), the campaign list and a contact
search. The baseline is the funnel's message query forced to read the table instead of the
report index (SQLite `NOT INDEXED`; PostgreSQL with index scans disabled), i.e. what a page
view would cost without the indexes.

    python bench/reports_speed.py                        # 200,000 contacts on SQLite (~1 min)
    python bench/reports_speed.py --contacts 1000000     # the full size (~4 min to build)
    python bench/reports_speed.py --db postgres          # on PostgreSQL (127.0.0.1, trust auth)
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import select, text

from campaigns.definitions import load_sequence
from campaigns.reports import campaign_counts, campaign_funnel, daily_series, upcoming
from core.clock import FrozenClock
from core.settings import load_settings
from nurture.app import NurtureApp
from storage.models import Campaign
from web.admin.contact_pages import search_query

NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
ZONE = "America/Los_Angeles"
BATCH = 50_000


def build(app: NurtureApp, contacts: int) -> None:
    snapshot = load_sequence("spasm-relief").snapshot()
    demo = load_sequence("demo").snapshot()
    import json

    start = (NOW - timedelta(days=20)).replace(tzinfo=None)
    with app.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO campaigns (id, name, definition, state, starts_at, launched_at,"
                " created_at) VALUES (1, 'spasm-relief', :d, 'active', :t, :t, :t),"
                " (2, 'demo', :e, 'active', :t, :t, :t)"
            ),
            {"d": json.dumps(snapshot), "e": json.dumps(demo), "t": start},
        )
    for first in range(1, contacts + 1, BATCH):
        ids = range(first, min(first + BATCH, contacts + 1))
        with app.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO contacts (id, first_name, last_name, email, timezone,"
                    " email_consent, custom_fields, source, created_at, updated_at)"
                    " VALUES (:id, :f, :l, :e, :z, 'opted_in', '{}', 'bench', :t, :t)"
                ),
                [
                    {
                        "id": i,
                        "f": f"Pat{i % 997}",
                        "l": f"Tester{i}",
                        "e": f"p{i}@example.com",
                        "z": ZONE,
                        "t": start,
                    }
                    for i in ids
                ],
            )
            conn.execute(
                text(
                    "INSERT INTO enrollments (id, campaign_id, contact_id, state, enrolled_at,"
                    " planned_step, exit_reason) VALUES (:id, 1, :id, :s, :t, :p, :r)"
                ),
                [
                    {
                        "id": i,
                        "s": "exited" if i % 50 == 0 else "active",
                        "r": ("booked" if i % 100 == 0 else "unsubscribed")
                        if i % 50 == 0
                        else None,
                        "t": start + timedelta(minutes=i % 1440),
                        "p": 1 if i % 2 else 0,
                    }
                    for i in ids
                ],
            )
            messages = []
            for i in ids:
                sent = start + timedelta(days=i % 20, minutes=i % 600)
                state = ("delivered", "sent", "undelivered", "failed")[i % 4]
                messages.append(
                    {
                        "id": i,
                        "e": i,
                        "c": i,
                        "s": 0,
                        "ch": "email",
                        "st": state,
                        "due": sent,
                        "sent": sent if state != "failed" else None,
                    }
                )
                if i % 2:
                    due = NOW.replace(tzinfo=None) + timedelta(hours=i % 160)
                    messages.append(
                        {
                            "id": contacts + i,
                            "e": i,
                            "c": i,
                            "s": 1,
                            "ch": "sms",
                            "st": "planned",
                            "due": due,
                            "sent": None,
                        }
                    )
            conn.execute(
                text(
                    "INSERT INTO messages (id, enrollment_id, campaign_id, contact_id, step_index,"
                    " channel, state, due_at, sent_at, attempts, updated_at) VALUES"
                    " (:id, :e, 1, :c, :s, :ch, :st, :due, :sent, 1, :due)"
                ),
                messages,
            )
            conn.execute(
                text(
                    "INSERT INTO events (kind, occurred_at, message_id, contact_id,"
                    " campaign_id, step_index, channel, data)"
                    " VALUES ('clicked', :t, :m, :m, 1, 0, 'email', '{}')"
                ),
                [
                    {"m": i, "t": start + timedelta(days=i % 20, hours=1)}
                    for i in ids
                    if i % 10 == 0
                ],
            )
    small = min(contacts, 10_000)
    with app.engine.begin() as conn:
        if app.engine.dialect.name == "postgresql":  # explicit ids do not move the sequences
            for table in ("campaigns", "contacts", "enrollments", "messages"):
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                        f" (SELECT max(id) FROM {table}))"
                    )
                )
        conn.execute(
            text(
                "INSERT INTO enrollments"
                " (campaign_id, contact_id, state, enrolled_at, planned_step)"
                " SELECT 2, id, 'active', :t, -1 FROM contacts WHERE id <= :n"
            ),
            {"t": start, "n": small},
        )
        if app.engine.dialect.name == "sqlite":
            conn.execute(text("ANALYZE"))
    if app.engine.dialect.name == "postgresql":
        # Autovacuum's steady state: index-only scans need the visibility map a bulk load lacks.
        with app.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))


def timed(fn: Callable[[], object], runs: int = 5) -> float:
    fn()  # warm the cache: staff look at a page more than once
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def page_views(app: NurtureApp) -> dict[str, float]:
    """Whole HTTP page views as staff make them (TestClient, signed in): the first view counts,
    the next ones within 30 s reuse it (web.admin.report_cache)."""
    from fastapi.testclient import TestClient

    from staff import accounts
    from storage.db import transaction
    from web.app import create_app

    with transaction(app.sessions) as session:
        accounts.add_user(session, "bench@clinic.test", "a bench passphrase", "viewer")
    with TestClient(create_app(app), follow_redirects=False) as client:
        form = client.get("/admin/login").text
        token = form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        client.post(
            "/admin/login",
            data={"email": "bench@clinic.test", "password": "a bench passphrase",
                  "csrf_token": token},
        )  # fmt: skip

        def view(path: str) -> Callable[[], object]:
            def get() -> object:
                response = client.get(path)
                assert response.status_code == 200, response.status_code
                return response

            return get

        return {
            "http: campaign page, recounted": timed(view("/admin/campaigns/spasm-relief?fresh=1")),
            "http: campaign page, within 30 s": timed(view("/admin/campaigns/spasm-relief")),
            "http: campaign list": timed(view("/admin/campaigns")),
        }


def baseline(app: NurtureApp) -> float:
    """The funnel's biggest query (messages by step and state) reading the whole table."""
    if app.engine.dialect.name == "sqlite":
        sql = (
            "SELECT step_index, state, count(*) FROM messages NOT INDEXED"
            " WHERE campaign_id = 1 GROUP BY step_index, state"
        )

        def run() -> object:
            with app.engine.connect() as conn:
                return conn.execute(text(sql)).all()
    else:
        sql = (
            "SELECT step_index, state, count(*) FROM messages"
            " WHERE campaign_id = 1 GROUP BY step_index, state"
        )

        def run() -> object:
            with app.engine.begin() as conn:
                conn.execute(text("SET LOCAL enable_indexscan = off"))
                conn.execute(text("SET LOCAL enable_indexonlyscan = off"))
                conn.execute(text("SET LOCAL enable_bitmapscan = off"))
                return conn.execute(text(sql)).all()

    return timed(run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=200_000)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    os.environ.setdefault("NURTURE_SECRET_KEY", secrets.token_urlsafe(32))  # this run only
    folder = Path(tempfile.mkdtemp(prefix="nurture-reports-"))
    if args.db == "sqlite":
        url = f"sqlite:///{folder / 'bench.db'}"
    else:
        name = "nurture_bench_reports"
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            c.execute(f"CREATE DATABASE {name}")
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    app = NurtureApp(
        settings=load_settings(database={"url": url}, outbox={"dir": str(folder / "outbox")}),
        clock=FrozenClock(NOW),
    )
    app.migrate()
    started = time.perf_counter()
    build(app, args.contacts)
    print(f"built {args.contacts:,} contacts on {args.db} in {time.perf_counter() - started:.0f} s")

    with app.sessions() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.id == 1))
        assert campaign is not None
        figures = {
            "campaign page: funnel": timed(lambda: campaign_funnel(session, campaign)),
            "campaign page: 30-day series": timed(
                lambda: daily_series(session, 1, end=NOW, days=30, zone=ZONE)
            ),
            "campaign page: next 7 days": timed(
                lambda: upcoming(session, 1, now=NOW, days=7, zone=ZONE)
            ),
            "campaign list: counts": timed(lambda: campaign_counts(session)),
            "contact search: email": timed(
                lambda: session.scalars(search_query("p123456@example.com")).all()
            ),
            "contact search: name prefix": timed(
                lambda: session.scalars(search_query("Pat12 Tester12")).all()
            ),
        }
        funnel = campaign_funnel(session, campaign)
    pages = page_views(app)
    scan = baseline(app)
    print(
        f"funnel check: enrolled {funnel.enrolled:,}, sent {funnel.sent:,}, "
        f"clicked {funnel.clicked:,}"
    )
    print(f"{'query':34} {'median ms':>10}")
    for name, ms in figures.items():
        print(f"{name:34} {ms:10.1f}")
    print(f"{'baseline: messages table scan':34} {scan:10.1f}")
    for name, ms in pages.items():
        print(f"{name:34} {ms:10.1f}")
    page = sum(v for k, v in figures.items() if k.startswith("campaign page"))
    print(
        f"one campaign page view: {page:.1f} ms of queries ({page / scan:.2f}x the one full scan)"
    )
    app.dispose()


if __name__ == "__main__":
    main()
