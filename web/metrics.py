"""`/metrics` for Prometheus: the engine's state, read from the database when scraped.

The database is the only state the web server and the workers share (several processes, each
sending), so counters kept in one process's hot path would see only its own share and reset at
every restart. A custom collector instead runs a few aggregate queries per scrape: messages by
state and channel, the due backlog and its oldest message's age (scheduler.backlog), how late
sends went out in the last hour (due time to the provider's acceptance), failed messages by
provider error code, provider webhook events by kind over the last hour, and the
workers alive (scheduler.heartbeat). Every time is the app's clock.

Only staff (a session cookie, web.admin.session) or a scraper holding NURTURE_METRICS_TOKEN
(`Authorization: Bearer ...`, compared in constant time) may read it: the figures describe
patients' messages. The cookie is scoped to /admin, so a signed-in browser reads
/admin/metrics; a scraper reads /metrics with its token.
"""

from __future__ import annotations

import hmac
import math
import re
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta

from fastapi import FastAPI, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler.backlog import due_backlog
from scheduler.heartbeat import scheduler_status
from storage.models import Event, Message, MessageState
from web.admin.session import current_staff
from web.services import WebServices

WEBHOOK_WINDOW = timedelta(hours=1)
#: Send delays are read from the messages sent in the last hour, the newest this many at most
#: (a scrape stays a few milliseconds however busy the hour was).
DELAY_SAMPLE = 20_000
DELAY_QUANTILES = (0.5, 0.9, 0.99)
#: Provider errors are stored as text: "twilio: reason (code 21610)" for a refused send,
#: "undelivered 30003 ..." for a delivery failure (scheduler.outcomes, scheduler.deliveries).
_TAGGED_CODE = re.compile(r"\(code (\w+)\)")
_BARE_CODE = re.compile(r"\b(\d{3,5})\b")
FAILED_STATES = (MessageState.FAILED, MessageState.UNDELIVERED)


def error_code(error: str | None) -> str:
    """The provider's code in a stored error text, or "none"; never the text itself (it may
    name a recipient, and each distinct text would be a time series of its own)."""
    found = _TAGGED_CODE.search(error or "") or _BARE_CODE.search(error or "")
    return found.group(1) if found else "none"


class EngineCollector(Collector):
    """The engine's figures, computed at scrape time from the database."""

    def __init__(self, nurture: WebServices) -> None:
        self.nurture = nurture

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self.nurture.clock()
        with self.nurture.sessions() as session:
            yield _messages(session)
            backlog = due_backlog(session, now=now)
            yield GaugeMetricFamily(
                "nurture_queue_due_messages", "Planned messages already due.", value=backlog.count
            )
            age = (now - backlog.oldest_due_at).total_seconds() if backlog.oldest_due_at else 0
            yield GaugeMetricFamily(
                "nurture_queue_oldest_due_age_seconds",
                "How long the oldest due message has waited (0 when none is due).",
                value=max(0.0, age),
            )
            yield _send_delays(session, since=now - WEBHOOK_WINDOW)
            yield _provider_errors(session)
            yield _webhook_events(session, since=now - WEBHOOK_WINDOW)
            workers = scheduler_status(
                session,
                now=now,
                stale_seconds=self.nurture.settings.scheduler.worker_stale_seconds,
            )
            yield GaugeMetricFamily(
                "nurture_workers_alive", "Workers with a fresh heartbeat.", value=len(workers.alive)
            )


def _messages(session: Session) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "nurture_messages", "Messages by state and channel.", labels=["state", "channel"]
    )
    rows = session.execute(
        select(Message.state, Message.channel, func.count()).group_by(
            Message.state, Message.channel
        )
    )
    for state, channel, count in rows:
        family.add_metric([state, channel], count)
    return family


def _send_delays(session: Session, *, since: datetime) -> GaugeMetricFamily:
    """Seconds from each message's due time to the provider's acceptance, by channel: the
    queue's and the pacing's delay as recipients feel it (quiet hours and windows are already
    in the due time)."""
    family = GaugeMetricFamily(
        "nurture_send_delay_seconds",
        "Due time to the provider's acceptance, messages sent in the last hour, by channel.",
        labels=["channel", "quantile"],
    )
    rows = session.execute(
        select(Message.channel, Message.due_at, Message.sent_at)
        .where(Message.sent_at >= since)
        .order_by(Message.sent_at.desc())
        .limit(DELAY_SAMPLE)
    )
    delays: dict[str, list[float]] = {}
    for channel, due_at, sent_at in rows:
        if sent_at is None:  # (the WHERE excludes it; the column is nullable)
            continue
        delays.setdefault(channel, []).append(max(0.0, (sent_at - due_at).total_seconds()))
    for channel, values in sorted(delays.items()):
        values.sort()
        for quantile in DELAY_QUANTILES:
            index = max(0, math.ceil(quantile * len(values)) - 1)  # nearest rank
            family.add_metric([channel, str(quantile)], values[index])
    return family


def _provider_errors(session: Session) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "nurture_provider_errors",
        "Failed and undelivered messages by provider and provider error code.",
        labels=["provider", "code"],
    )
    rows = session.execute(
        select(Message.provider, Message.error, func.count())
        .where(Message.state.in_([str(state) for state in FAILED_STATES]))
        .group_by(Message.provider, Message.error)
    )
    counts: Counter[tuple[str, str]] = Counter()
    for provider, error, count in rows:
        counts[(provider or "none", error_code(error))] += count
    for labels, count in sorted(counts.items()):
        family.add_metric(list(labels), count)
    return family


def _webhook_events(session: Session, *, since: datetime) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "nurture_webhook_events_last_hour",
        "Provider webhook events recorded in the last hour, by provider and kind.",
        labels=["provider", "kind"],
    )
    rows = session.execute(
        select(Event.provider, Event.kind, func.count())
        .where(Event.provider.is_not(None), Event.occurred_at >= since)
        .group_by(Event.provider, Event.kind)
    )
    for provider, kind, count in rows:
        family.add_metric([provider or "none", kind], count)
    return family


def _allowed(request: Request, nurture: WebServices) -> bool:
    """A scraper's bearer token (constant-time comparison) or a signed-in staff member."""
    token = nurture.settings.secrets.metrics_token
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if token and scheme.lower() == "bearer":
        return hmac.compare_digest(presented.strip().encode(), token.encode())
    return current_staff(request) is not None


def install(api: FastAPI, nurture: WebServices) -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(nurture))

    def metrics(request: Request) -> Response:
        if not _allowed(request, nurture):
            raise HTTPException(
                401, "staff session or bearer token required", {"WWW-Authenticate": "Bearer"}
            )
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    for path in ("/metrics", "/admin/metrics"):
        api.add_api_route(path, metrics, methods=["GET"], include_in_schema=False)
