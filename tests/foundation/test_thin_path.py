"""The thin path end to end: import → launch → tick → send → click → unsubscribe stops the next
step. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from campaigns import lifecycle
from campaigns.definitions import load_sequence
from contacts.importer import import_csv
from nurture.app import NurtureApp
from nurture.clock import FrozenClock
from nurture.db import transaction
from nurture.models import Event, Message, MessageState, Suppression
from nurture.settings import REPO_ROOT
from providers.memory import MemoryChannel
from web.app import create_app

LINK = re.compile(r"http://[^\s\"<>]+/l/[^\s\"<>]+")
UNSUB = re.compile(r"http://[^\s\"<>]+/u/[^\s\"<>]+")


def _tick(app: NurtureApp) -> None:
    app.planner.tick()
    app.dispatcher.tick()


def _states(app: NurtureApp) -> dict[tuple[int, int], str]:
    with transaction(app.sessions) as session:
        rows = session.execute(select(Message.contact_id, Message.step_index, Message.state))
        return {(contact, step): state for contact, step, state in rows}


def test_import_launch_send_click_unsubscribe(
    nurture_app: NurtureApp, channel: MemoryChannel, frozen_clock: FrozenClock, tmp_path: Path
) -> None:
    csv = tmp_path / "contacts.csv"
    csv.write_text((REPO_ROOT / "contacts" / "sample_contacts.csv").read_text())
    summary = import_csv(nurture_app.sessions, csv, "test", default_timezone="America/Los_Angeles")
    assert summary.inserted == 3 and summary.rejected == 0

    with transaction(nurture_app.sessions) as session:
        _, enrolled = lifecycle.launch(session, load_sequence("demo"), now=frozen_clock())
    assert enrolled == 3

    _tick(nurture_app)
    assert len(channel.emails) == 3 and not channel.texts
    welcome = channel.emails[0]
    assert welcome.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "1234 Wilshire Blvd" in welcome.html and "1234 Wilshire Blvd" in welcome.text

    client = TestClient(create_app(nurture_app), follow_redirects=False)
    link = LINK.search(welcome.text)
    assert link is not None
    response = client.get(
        link.group(0).split("testserver", 1)[-1].replace("http://127.0.0.1:8000", "")
    )
    assert response.status_code == 302
    assert response.headers["location"].startswith("https://spinaldecompressionla.com/book?")
    assert "utm_medium=email" in response.headers["location"]
    with transaction(nurture_app.sessions) as session:
        clicks = session.scalar(select(func.count()).where(Event.kind == "clicked"))
    assert clicks == 1

    # Maria (the first contact, SMS consent) unsubscribes from texts before step 2 is due.
    maria = next(email for email in channel.emails if email.to == "maria.lopez@example.com")
    unsubscribe_path = UNSUB.search(maria.text).group(0).replace("http://127.0.0.1:8000", "")
    sms_unsubscribe = unsubscribe_path  # an email unsubscribe token, for the email channel
    assert client.get(sms_unsubscribe).status_code == 200  # GET only confirms
    with transaction(nurture_app.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0
    assert client.post(sms_unsubscribe).status_code == 200
    with transaction(nurture_app.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 1

    frozen_clock.advance(seconds=20)
    _tick(nurture_app)
    _tick(nurture_app)
    texted = {sms.to for sms in channel.texts}
    # Aiko has SMS consent and gets the text; James has none; Maria left every channel she had
    # consented to through email... she still has SMS consent, so she gets the text.
    assert "+18185550103" in texted
    assert "+13105550102" not in texted
    states = _states(nurture_app)
    assert sorted(states.values()).count(MessageState.SENT) == len(channel.sent_ids)
