"""Large campaigns share one count per TTL; small ones stay live; a recount can be asked for."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from campaigns import lifecycle
from campaigns.definitions import load_sequence
from nurture.app import NurtureApp
from storage.db import transaction
from web.admin import report_cache
from web.admin.report_cache import ReportCache

NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)


def test_small_results_are_never_kept_and_large_ones_are_until_the_ttl(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [100.0]
    monkeypatch.setattr(report_cache.time, "monotonic", lambda: clock[0])
    cache, calls = ReportCache(ttl=30, live_below=10), []

    def compute(size: int):
        def run() -> tuple[str, int]:
            calls.append(size)
            return f"figures {len(calls)}", size

        return run

    assert cache.get("small", compute(3), now=NOW).value == "figures 1"
    assert cache.get("small", compute(3), now=NOW).value == "figures 2"  # live
    first = cache.get("big", compute(10), now=NOW)
    again = cache.get("big", compute(10), now=NOW)
    assert (first.cached, again.cached, again.value) == (False, True, "figures 3")
    assert cache.get("big", compute(10), now=NOW, fresh=True).value == "figures 4"
    clock[0] += 31
    assert cache.get("big", compute(10), now=NOW).value == "figures 5"
    assert len(calls) == 5


def _launch(app: NurtureApp, contacts: int) -> None:
    from contacts.consent import record_consent
    from storage.models import Contact

    with transaction(app.sessions) as session:
        for n in range(contacts):
            contact = Contact(first_name="P", email=f"p{n}@example.com", timezone="UTC")
            session.add(contact)
            session.flush()
            contact.add_tags(["demo"])
            record_consent(
                session,
                contact.id,
                "email",
                "opted_in",
                source="t",
                evidence="f",
                occurred_at=app.clock(),
            )
        lifecycle.launch(session, load_sequence("demo"), now=app.clock(), settings=app.settings)


def test_a_large_campaign_page_says_how_old_its_figures_are(
    editor: TestClient, staff_accounts: NurtureApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report_cache, "LIVE_BELOW", 2)
    _launch(staff_accounts, 2)
    first = editor.get("/admin/campaigns/demo").text
    assert 'id="total-sent">0<' in first and "figures-age" not in first
    staff_accounts.planner.tick()
    staff_accounts.dispatcher.tick()
    cached = editor.get("/admin/campaigns/demo").text
    assert 'id="total-sent">0<' in cached and "Figures as of 10:00:00" in cached
    recount = editor.get("/admin/campaigns/demo?fresh=1").text
    assert 'id="total-sent">2<' in recount and "figures-age" not in recount


def test_pausing_is_shown_at_once_even_for_a_large_campaign(
    editor: TestClient, staff_accounts: NurtureApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report_cache, "LIVE_BELOW", 2)
    _launch(staff_accounts, 2)
    editor.get("/admin/campaigns/demo")
    with transaction(staff_accounts.sessions) as session:
        lifecycle.pause(session, "demo", now=staff_accounts.clock())
    page = editor.get("/admin/campaigns/demo").text
    assert 'id="campaign-state">paused<' in page and "figures-age" not in page
