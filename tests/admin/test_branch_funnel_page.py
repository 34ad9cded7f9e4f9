"""The campaign page's funnel shows each branch (issue 18): who went which way, in people, each
share over those decided at the step, never above 100%."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from campaigns import lifecycle
from campaigns.definitions import Sequence
from contacts.consent import record_consent
from nurture.app import NurtureApp
from staff.api_keys import create_key
from storage.db import transaction
from storage.models import ConsentStatus, Contact, Message
from web.links import Click, record_clicks


def _sequence() -> Sequence:
    branch = {"clicked": "thanks", "otherwise": "reminder", "within": "2d"}
    return Sequence.model_validate(
        {
            "name": "branch-page",
            "title": "branch page",
            "template_folder": "spasm-relief",
            "steps": [
                {"name": "visit", "channel": "email", "template": "01-welcome", "then": branch},
                {"name": "reminder", "channel": "email", "template": "03-cycle"},
                {"name": "thanks", "channel": "email", "template": "04-decompression"},
            ],
        }
    )


def _one_clicked_three_did_not(app: NurtureApp) -> None:
    """Four people get the branching email; one clicks; two days later the branch decides."""
    with transaction(app.sessions) as session:
        for n in range(4):
            contact = Contact(
                first_name="Pat",
                last_name=f"Branch{n}",
                email=f"branch{n}@example.com",
                timezone="America/Los_Angeles",
            )
            session.add(contact)
            session.flush()
            record_consent(
                session, contact.id, "email", ConsentStatus.OPTED_IN, source="test",
                evidence="form", occurred_at=app.clock(),
            )  # fmt: skip
        lifecycle.launch(session, _sequence(), now=app.clock(), settings=app.settings)
    app.planner.tick()
    assert app.dispatcher.tick().sent == 4
    with transaction(app.sessions, immediate=False) as session:
        first = session.scalars(select(Message).order_by(Message.id)).first()
        assert first is not None
        clicked = Click(
            app.clock(), first.id, first.contact_id, first.campaign_id, 0, "email", "t", "booking"
        )
    record_clicks(app.engine, [clicked])
    app.clock.advance(days=2, minutes=1)  # type: ignore[attr-defined]  # the tests' FrozenClock
    assert app.planner.tick().branched == {"clicked": 1, "otherwise": 3}


def test_the_funnel_shows_a_row_per_branch(editor: TestClient, staff_accounts: NurtureApp) -> None:
    _one_clicked_three_did_not(staff_accounts)
    page = editor.get("/admin/campaigns/branch-page?fresh=1").text
    assert '<table id="branch-table">' in page
    clicked_row = page.split('id="branch-visit-clicked">', 1)[1].split("</tr>", 1)[0]
    assert "clicked the booking link within 2d" in clicked_row and "thanks" in clicked_row
    assert '<td class="num">1</td><td class="num">25%</td>' in clicked_row
    other_row = page.split('id="branch-visit-otherwise">', 1)[1].split("</tr>", 1)[0]
    assert "did not click within 2d" in other_row and "reminder" in other_row
    assert '<td class="num">3</td><td class="num">75%</td>' in other_row


def test_the_rest_api_funnel_has_the_same_branch_rows(
    editor: TestClient, staff_accounts: NurtureApp
) -> None:
    app = staff_accounts
    _one_clicked_three_did_not(app)
    with transaction(app.sessions) as session:
        key = create_key(session, name="crm", scope="read", created_by="t", at=app.clock())
    response = editor.get(
        "/api/v1/campaigns/branch-page/funnel",
        headers={"Authorization": f"Bearer {key.secret}"},
    )
    assert response.status_code == 200, response.text
    rows = {(b["step"], b["event"]): b for b in response.json()["branches"]}
    assert set(rows) == {("visit", "clicked"), ("visit", "otherwise")}
    clicked, other = rows["visit", "clicked"], rows["visit", "otherwise"]
    assert (clicked["target"], clicked["people"], clicked["decided"]) == ("thanks", 1, 4)
    assert clicked["share"] == 0.25 and clicked["label"] == "clicked the booking link within 2d"
    assert (other["target"], other["people"], other["share"]) == ("reminder", 3, 0.75)


def test_a_campaign_without_branches_has_no_branch_table(
    editor: TestClient, staff_accounts: NurtureApp
) -> None:
    from campaigns.definitions import load_sequence

    app = staff_accounts
    with transaction(app.sessions) as session:
        lifecycle.launch(session, load_sequence("demo"), now=app.clock(), settings=app.settings)
    page = editor.get("/admin/campaigns/demo?fresh=1").text
    assert "Per step" in page and "branch-table" not in page


def test_the_projection_page_shows_each_branch_with_its_share(editor: TestClient) -> None:
    page = editor.get("/admin/campaigns/spasm-relief/projection").text
    assert '<ul id="branches">' in page
    assert (
        "<li>after first-visit, within 2d: clicked 10% -&gt; questions-text (0 contacts); "
        "otherwise 90% -&gt; reminder-text (0 contacts) (shares assumed)</li>"
    ) in page
    assert "branches" not in editor.get("/admin/campaigns/demo/projection").text
