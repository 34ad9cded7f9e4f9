"""Campaign pages through the app: launch, the funnel after a dispatch, pause/resume/cancel,
previews, the 7-day schedule and the CSV export."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from core.clock import FrozenClock
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import (
    Campaign,
    CampaignState,
    Contact,
    Enrollment,
    EnrollmentState,
    Message,
    MessageState,
)


@pytest.fixture
def demo_contacts(staff_accounts: NurtureApp) -> list[int]:
    """Three opted-in contacts tagged for the demo sequence (one with SMS consent)."""
    from contacts.consent import record_consent

    ids = []
    with transaction(staff_accounts.sessions) as session:
        for n, (first, phone) in enumerate(
            [("Maria", "+13105550101"), ("Ana", None), ("Luis", None)], start=1
        ):
            contact = Contact(
                first_name=first,
                last_name="Tester",
                email=f"person{n}@example.com",
                phone=phone,
                timezone="America/Los_Angeles",
            )
            session.add(contact)
            session.flush()
            contact.add_tags(["demo"])
            record_consent(
                session,
                contact.id,
                "email",
                "opted_in",
                source="t",
                evidence="form",
                occurred_at=staff_accounts.clock(),
            )
            if phone:
                record_consent(
                    session,
                    contact.id,
                    "sms",
                    "opted_in",
                    source="t",
                    evidence="form",
                    occurred_at=staff_accounts.clock(),
                )
            ids.append(contact.id)
    return ids


def _post(client: TestClient, page: str, action: str, **data: str):
    token = client.get(page).text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return client.post(action, data={"csrf_token": token, **data})


def test_launch_then_dispatch_moves_the_funnel(
    editor: TestClient, staff_accounts: NurtureApp, demo_contacts: list[int]
) -> None:
    page = editor.get("/admin/campaigns/demo")
    assert page.status_code == 200 and "not launched" in page.text
    assert '<p class="big" id="audience-size">3</p>' in page.text
    response = _post(editor, "/admin/campaigns/demo", "/admin/campaigns/demo/launch", starts_at="")
    assert response.status_code == 303 and response.headers["location"].endswith("done=launched")
    before = editor.get(response.headers["location"]).text
    assert "Campaign launched." in before and 'id="total-sent">0<' in before
    staff_accounts.planner.tick()
    result = staff_accounts.dispatcher.tick()
    assert result.sent == 3
    after = editor.get("/admin/campaigns/demo").text
    assert 'id="total-sent">3<' in after and 'id="total-enrolled">3 enrolled<' in after
    listing = editor.get("/admin/campaigns").text
    assert "demo" in listing and "active" in listing


def test_launch_at_a_future_time_in_the_clinic_zone(
    editor: TestClient, staff_accounts: NurtureApp, demo_contacts: list[int]
) -> None:
    # The frozen clock is Tue 2026-12-01 10:00 in Los Angeles.
    response = _post(
        editor,
        "/admin/campaigns/demo",
        "/admin/campaigns/demo/launch",
        starts_at="2026-12-03T09:30",
    )
    assert response.status_code == 303
    with staff_accounts.sessions() as session:
        campaign = session.query(Campaign).filter_by(name="demo").one()
        assert campaign.starts_at.isoformat() == "2026-12-03T17:30:00+00:00"
    staff_accounts.planner.tick()
    page = editor.get("/admin/campaigns/demo").text
    assert "What will be sent in the next 7 days" in page and "Thu 03 Dec" in page


@pytest.mark.parametrize(
    ("starts_at", "message"),
    [
        ("2026-11-30T09:00", "in the past"),
        ("next tuesday", "date and time"),
        ("2028-01-01T09:00", "more than a year"),
    ],
)
def test_a_bad_start_is_explained_and_launches_nothing(
    editor: TestClient, staff_accounts: NurtureApp, starts_at: str, message: str
) -> None:
    response = _post(
        editor, "/admin/campaigns/demo", "/admin/campaigns/demo/launch", starts_at=starts_at
    )
    assert response.status_code == 400 and message in response.text
    with staff_accounts.sessions() as session:
        assert session.query(Campaign).count() == 0


def test_pause_resume_cancel(
    editor: TestClient, staff_accounts: NurtureApp, demo_contacts: list[int]
) -> None:
    page = "/admin/campaigns/demo"
    _post(editor, page, "/admin/campaigns/demo/launch", starts_at="")
    staff_accounts.planner.tick()
    response = _post(editor, page, "/admin/campaigns/demo/pause")
    assert response.headers["location"].endswith("done=paused")
    assert "Resume" in editor.get(page).text
    assert staff_accounts.dispatcher.tick().sent == 0  # paused: nothing goes out
    again = _post(editor, page, "/admin/campaigns/demo/pause")
    assert again.status_code == 400 and "not active" in again.text
    _post(editor, page, "/admin/campaigns/demo/resume")
    assert staff_accounts.dispatcher.tick().sent == 3
    _post(editor, page, "/admin/campaigns/demo/cancel")
    with staff_accounts.sessions() as session:
        assert session.query(Campaign).one().state == CampaignState.CANCELLED
    assert "was cancelled" in editor.get(page).text


def test_launching_twice_is_refused(
    editor: TestClient, staff_accounts: NurtureApp, demo_contacts: list[int]
) -> None:
    _post(editor, "/admin/campaigns/demo", "/admin/campaigns/demo/launch", starts_at="")
    # A second tab still showing the launch form.
    token = editor.get("/admin/contacts").text.split('value="', 2)[1].split('"', 1)[0]
    response = editor.post("/admin/campaigns/demo/launch", data={"csrf_token": token})
    assert response.status_code == 400 and "already active" in response.text


def test_unknown_and_malformed_campaign_names(editor: TestClient) -> None:
    missing = editor.get("/admin/campaigns/no-such-thing")
    assert missing.status_code == 404 and "No such campaign." in missing.text
    assert missing.headers["content-type"].startswith("text/html")
    assert editor.get("/admin/campaigns/Bad..Name").status_code == 422


def test_previews_render_every_step_for_a_chosen_contact(
    editor: TestClient, demo_contacts: list[int]
) -> None:
    page = editor.get(f"/admin/campaigns/demo/preview?contact={demo_contacts[1]}").text
    assert f"contact #{demo_contacts[1]} (Ana Tester)" in page
    assert 'class="sms-encoding">GSM-7<' in page and 'class="sms-segments">' in page
    assert "sandbox" in page and "/steps/0/email.html?contact=" in page
    frame = editor.get(f"/admin/campaigns/demo/steps/0/email.html?contact={demo_contacts[1]}")
    assert frame.status_code == 200 and "Ana" in frame.text
    policy = frame.headers["content-security-policy"]
    assert "sandbox" in policy and "default-src 'none'" in policy and "script-src" not in policy
    # Links in previews are for message 0 / contact 0: they cannot unsubscribe a real person.
    assert "/u/0~e~0." in frame.text


def test_preview_of_a_missing_contact_falls_back_to_a_sample(editor: TestClient) -> None:
    page = editor.get("/admin/campaigns/demo/preview?contact=999").text
    assert "There is no contact #999" in page and "made-up contact" in page
    assert editor.get("/admin/campaigns/demo/steps/1/email.html").status_code == 404  # an SMS


def test_report_csv(
    editor: TestClient,
    staff_accounts: NurtureApp,
    demo_contacts: list[int],
    frozen_clock: FrozenClock,
) -> None:
    assert editor.get("/admin/campaigns/demo/report.csv").status_code == 404  # not launched
    _post(editor, "/admin/campaigns/demo", "/admin/campaigns/demo/launch", starts_at="")
    staff_accounts.planner.tick()
    staff_accounts.dispatcher.tick()
    response = editor.get("/admin/campaigns/demo/report.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    header, total, first_step = rows[0], rows[1], rows[2]
    assert header[:5] == ["campaign", "step_index", "name", "channel", "reached"]
    assert total[2] == "all steps" and total[header.index("sent")] == "3"
    assert first_step[2] == "welcome" and first_step[header.index("sent")] == "3"
    daily_header = rows.index(
        ["day", "enrolled", "sent", "delivered", "clicked", "booked", "unsubscribed"]
    )
    today = [row for row in rows[daily_header + 1 :] if row[0] == "2026-12-01"]
    assert today and today[0][2] == "3"


def test_messages_waiting_are_listed_per_day(
    editor: TestClient, staff_accounts: NurtureApp, demo_contacts: list[int]
) -> None:
    _post(editor, "/admin/campaigns/demo", "/admin/campaigns/demo/launch", starts_at="")
    staff_accounts.planner.tick()
    with staff_accounts.sessions() as session:
        planned = session.query(Message).filter_by(state=MessageState.PLANNED).count()
    page = editor.get("/admin/campaigns/demo").text
    assert planned == 3 and "Tue 01 Dec" in page


def test_projection_before_launch_follows_the_planner_rules(
    viewer: TestClient, demo_contacts: list[int]
) -> None:
    page = viewer.get("/admin/campaigns/demo/projection").text
    assert "if you launched it now" in page
    # Three welcome emails at once; one text (only Maria has SMS consent), two skipped.
    assert "<strong>4</strong> messages would be sent to 3 contacts; 2 would be skipped" in page
    assert "cycle-text: no sms consent (2)" in page


def test_projection_of_a_running_campaign_and_its_limits(
    editor: TestClient,
    staff_accounts: NurtureApp,
    demo_contacts: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from web.admin import projection

    _post(editor, "/admin/campaigns/demo", "/admin/campaigns/demo/launch", starts_at="")
    staff_accounts.planner.tick()
    staff_accounts.dispatcher.tick()
    page = editor.get("/admin/campaigns/demo/projection").text
    assert "<strong>1</strong> messages would be sent" in page  # only the text is left
    monkeypatch.setattr(projection, "PROJECTION_LIMIT", 2)
    assert "too many to project" in editor.get("/admin/campaigns/demo/projection").text
    assert editor.get("/admin/campaigns/demo/projection?days=90").status_code == 422
    _post(editor, "/admin/campaigns/demo", "/admin/campaigns/demo/cancel")
    assert "will send nothing" in editor.get("/admin/campaigns/demo/projection").text


def test_the_dashboard_and_the_cli_show_the_same_state(
    viewer: TestClient,
    staff_accounts: NurtureApp,
    demo_contacts: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Running, paused, cancelled and finished read the same in `campaigns list` and on the
    dashboard's list and pages (a finished demo once read "active" on the web)."""
    from typer.testing import CliRunner

    from campaigns import lifecycle
    from campaigns.definitions import load_sequence
    from nurture.cli import campaigns as campaigns_cli
    from nurture.cli.main import app as cli

    names = {"running": "active", "resting": "paused", "stopped": "cancelled", "done": "finished"}
    with transaction(staff_accounts.sessions) as session:
        for name in names:
            sequence = load_sequence("demo").model_copy(update={"name": name})
            lifecycle.launch(session, sequence, now=staff_accounts.clock(), settings=None)
        lifecycle.pause(session, "resting", now=staff_accounts.clock())
        lifecycle.cancel(session, "stopped", now=staff_accounts.clock())
        done = session.query(Campaign).filter_by(name="done").one()
        session.query(Enrollment).filter_by(campaign_id=done.id).update(
            {"state": EnrollmentState.COMPLETED}
        )
    monkeypatch.setattr(campaigns_cli, "ready_app", lambda: staff_accounts)  # its frozen clock
    listing = CliRunner().invoke(cli, ["campaigns", "list"], terminal_width=200)
    assert listing.exit_code == 0, listing.output
    cli_states = {
        line.split("│")[1].strip(): line.split("│")[4].strip()
        for line in listing.output.splitlines()
        if line.count("│") >= 5
    }
    web_list = viewer.get("/admin/campaigns").text
    for name, state in names.items():
        assert cli_states[name] == state
        page = viewer.get(f"/admin/campaigns/{name}").text
        assert f'id="campaign-state">{state}</span>' in page
        assert f'href="/admin/campaigns/{name}"' in web_list
        row = web_list.split(f'href="/admin/campaigns/{name}"', 1)[1].split("</tr>", 1)[0]
        assert f">{state}</span>" in row
    assert "Finished: nobody is left" in viewer.get("/admin/campaigns/done").text
