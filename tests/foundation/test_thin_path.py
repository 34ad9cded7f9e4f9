"""The thin path end to end on SQLite and PostgreSQL: import → launch → tick → send → click is
recorded and redirected → an unsubscribe stops the next step."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from campaigns import lifecycle
from campaigns.definitions import load_sequence
from contacts.importer import import_csv
from core.clock import FrozenClock
from core.settings import REPO_ROOT
from nurture.app import NurtureApp
from providers.memory import MemoryChannel
from storage.db import transaction
from storage.models import Enrollment, EnrollmentState, Event, Message, Suppression
from web.app import create_app

BASE = "http://127.0.0.1:8000"
LINK = re.compile(re.escape(BASE) + r"(/l/[^\s\"<>]+)")
UNSUBSCRIBE = re.compile(re.escape(BASE) + r"(/u/[^\s\"<>]+)")

TWO_EMAILS = """
name = "two-emails"
title = "Two emails"
template_folder = "spasm-relief"
[audience]
require_consent = ["email"]
[[steps]]
name = "first"
channel = "email"
template = "01-welcome"
[[steps]]
name = "second"
channel = "email"
template = "01-welcome"
delay = "2d"
"""


def _tick(app: NurtureApp) -> None:
    app.planner.tick()
    app.dispatcher.tick()


@pytest.fixture
def imported(nurture_app: NurtureApp, tmp_path: Path) -> NurtureApp:
    csv = tmp_path / "contacts.csv"
    csv.write_text((REPO_ROOT / "contacts" / "sample_contacts.csv").read_text())
    summary = import_csv(nurture_app.sessions, csv, "test", default_timezone="America/Los_Angeles")
    assert (summary.inserted, summary.rejected) == (3, 0)
    return nurture_app


def test_demo_sequence_sends_email_then_text_to_consenting_contacts(
    imported: NurtureApp, channel: MemoryChannel, frozen_clock: FrozenClock
) -> None:
    with transaction(imported.sessions) as session:
        _, enrolled = lifecycle.launch(session, load_sequence("demo"), now=frozen_clock())
    assert enrolled == 3

    _tick(imported)
    assert len(channel.emails) == 3 and not channel.texts
    welcome = channel.emails[0]
    assert welcome.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert welcome.headers["List-Unsubscribe"].startswith(f"<{BASE}/u/")
    assert "1234 Wilshire Blvd" in welcome.html and "1234 Wilshire Blvd" in welcome.text

    frozen_clock.advance(minutes=5)
    _tick(imported)  # plans step 2 after step 1 settled
    _tick(imported)
    # Maria and Aiko gave written SMS consent; James did not, so his text is skipped.
    assert sorted(sms.to for sms in channel.texts) == ["+12135550101", "+18185550103"]
    assert all(sms.body.endswith("Reply STOP to opt out.") for sms in channel.texts)
    with transaction(imported.sessions) as session:
        skipped = session.scalars(select(Message.skip_reason).where(Message.state == "skipped"))
        assert list(skipped) == ["no sms consent or suppressed"]


def test_click_is_recorded_and_redirected_with_utm(
    imported: NurtureApp, channel: MemoryChannel, frozen_clock: FrozenClock
) -> None:
    with transaction(imported.sessions) as session:
        lifecycle.launch(session, load_sequence("demo"), now=frozen_clock())
    _tick(imported)
    client = TestClient(create_app(imported), follow_redirects=False)
    path = LINK.search(channel.emails[0].text).group(1)

    response = client.get(path, headers={"User-Agent": "pytest-browser"})

    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith("https://spinaldecompressionla.com/book?")
    assert "utm_medium=email" in location and "utm_campaign=demo" in location
    assert "utm_content=welcome" in location
    with transaction(imported.sessions) as session:
        click = session.scalar(select(Event).where(Event.kind == "clicked"))
    assert click is not None and click.user_agent == "pytest-browser"
    assert click.message_id == channel.emails[0].message_id


def test_tampered_link_is_a_404_and_records_nothing(
    imported: NurtureApp, channel: MemoryChannel, frozen_clock: FrozenClock
) -> None:
    with transaction(imported.sessions) as session:
        lifecycle.launch(session, load_sequence("demo"), now=frozen_clock())
    _tick(imported)
    client = TestClient(create_app(imported), follow_redirects=False)
    path = LINK.search(channel.emails[0].text).group(1)
    tampered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")

    response = client.get(tampered)

    assert response.status_code == 404 and "location" not in response.headers
    with transaction(imported.sessions) as session:
        assert session.scalar(select(func.count()).where(Event.kind == "clicked")) == 0


def test_unsubscribe_stops_the_next_step(
    imported: NurtureApp, channel: MemoryChannel, frozen_clock: FrozenClock, tmp_path: Path
) -> None:
    definition = tmp_path / "two-emails.toml"
    definition.write_text(TWO_EMAILS)
    with transaction(imported.sessions) as session:
        lifecycle.launch(session, load_sequence(definition), now=frozen_clock())
    _tick(imported)
    assert len(channel.emails) == 3
    leaving = next(e for e in channel.emails if e.to == "james.carter@example.com")
    client = TestClient(create_app(imported), follow_redirects=False)
    path = UNSUBSCRIBE.search(leaving.text).group(1)

    assert client.get(path).status_code == 200  # a GET (mail scanners) never unsubscribes
    with transaction(imported.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0
    assert client.post(path).status_code == 200
    with transaction(imported.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 1

    frozen_clock.advance(days=3)
    _tick(imported)
    _tick(imported)

    second = [e.to for e in channel.emails[3:]]
    assert sorted(second) == ["aiko.tanaka@example.com", "maria.lopez@example.com"]
    with transaction(imported.sessions) as session:
        james = session.scalar(select(Enrollment).where(Enrollment.state == EnrollmentState.EXITED))
        assert james is not None and james.exit_reason == "unsubscribed"
