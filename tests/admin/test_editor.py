"""The sequence editor's endpoints: the one segment counter, the content rules in marketer words,
previews of a draft, and "send me a test" (marked, rate-limited, never a campaign message)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from campaigns.reports import campaign_counts
from contacts.suppressions import suppress
from core.clock import FrozenClock
from nurture.app import NurtureApp
from providers.memory import MemoryChannel
from staff import accounts
from storage.db import transaction
from storage.models import Contact, Event, Message, StaffUser
from tests.admin.conftest import EDITOR
from web.admin.editor_previews import TEST_SENT, TESTS_PER_MINUTE

TEXT_OK = "{{ clinic_name }}: Hi {{ first_name }}, book {{ booking_link }} or call {{ clinic_phone }}. Reply STOP to opt out."  # noqa: E501


def email(subject: str = "A note from us", body: str = "Hello {{ first_name }}.") -> dict[str, str]:
    return {"subject": subject, "preheader": "A short note", "body": body}


def three_steps(text_en: str = TEXT_OK, text_es: str | None = None) -> dict[str, Any]:
    text_es = (
        text_es
        if text_es is not None
        else text_en.replace(
            "Reply STOP to opt out.", "Responda STOP para dejar de recibir mensajes."
        )
    )
    return {
        "name": "back-care",
        "title": "Back care",
        "reason": "you asked us about back care",
        "reason_es": "usted nos pidió información sobre el cuidado de la espalda",
        "steps": [
            {"name": "welcome", "channel": "email", "messages": {"en": email(), "es": email()}},
            {
                "name": "nudge",
                "channel": "sms",
                "delay": "2d",
                "start": "10:00",
                "end": "19:00",
                "messages": {"en": {"text": text_en}, "es": {"text": text_es}},
            },
            {"name": "invite", "channel": "email", "delay": "3d",
             "messages": {"en": email(), "es": email()}},
        ],
    }  # fmt: skip


@pytest.fixture
def token(editor: TestClient, csrf: Any) -> str:
    return str(csrf(editor.get("/admin/sequences/new").text))


def post(client: TestClient, path: str, token: str, **fields: Any) -> Any:
    data = {"csrf_token": token, **{k: str(v) for k, v in fields.items()}}
    return client.post(f"/admin/editor/{path}", data=data)


def test_the_editor_needs_a_login(client: TestClient) -> None:
    assert client.get("/admin/sequences/new").status_code == 303
    answer = client.post("/admin/editor/count", data={"text": "hi"})
    assert answer.status_code == 303 and "/admin/login" in answer.headers["location"]


def test_posts_need_the_csrf_token(editor: TestClient) -> None:
    assert editor.post("/admin/editor/count", data={"text": "hi"}).status_code == 403
    assert editor.post("/admin/editor/check", data={"draft": "{}"}).status_code == 403
    refused = editor.post("/admin/editor/check", data={"draft": "{}", "csrf_token": "forged"})
    assert refused.status_code == 403


def test_the_page_offers_the_allowed_placeholders(editor: TestClient) -> None:
    page = editor.get("/admin/sequences/new")
    assert page.status_code == 200
    for name in ("first_name", "last_name", "clinic_phone", "booking_link"):
        assert f'data-placeholder="{name}"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_the_counter_counts_segments_as_sent(editor: TestClient, token: str) -> None:
    short = post(editor, "count", token, text="Hi {{ first_name }}", max_segments=1).json()
    assert short["encoding"] == "GSM-7" and short["segments"] == 1 and not short["over"]
    assert short["as_sent"] == "Hi Maria"  # the sample contact's name, filled in
    long = post(editor, "count", token, text="x" * 161, max_segments=1).json()
    assert long["segments"] == 2 and long["over"]
    curly = post(editor, "count", token, text="It’s here", max_segments=2).json()  # noqa: RUF001
    assert curly["encoding"] == "UCS-2" and curly["forcing"] == ["’"]  # noqa: RUF001


def test_the_counter_explains_a_refused_placeholder(editor: TestClient, token: str) -> None:
    answer = post(editor, "count", token, text="{% if x %}hi{% endif %}").json()
    assert "only placeholders like" in answer["error"]


def test_a_clean_draft_has_no_problems(editor: TestClient, token: str) -> None:
    report = post(editor, "check", token, draft=json.dumps(three_steps())).json()
    assert report["problems"] == [], report["problems"]
    assert report["ok"]


def test_problems_are_listed_in_marketer_words(editor: TestClient, token: str) -> None:
    draft = three_steps(text_en="{{ clinic_name }}: Hi, call {{ clinic_phone }} {{ booking_link }}")
    draft["steps"][2]["messages"].pop("es")
    draft["steps"][0]["messages"]["en"]["subject"] = "Help for your sciatica"
    report = post(editor, "check", token, draft=json.dumps(draft)).json()
    problems = [p["message"] for p in report["problems"]]
    assert any("Step 2 (text, English): This text has no way to stop" in p for p in problems)
    assert "The Spanish version of step 3 is missing." in problems
    assert not report["ok"]
    warnings = [w["message"] for w in report["warnings"]]  # the launch check's own rule
    assert "Step 1 (email, English): The subject line mentions a health detail (sciatica)" in [
        w.split(": anyone")[0] for w in warnings
    ], warnings


def test_a_text_over_its_segment_limit_is_a_problem(editor: TestClient, token: str) -> None:
    long = TEXT_OK.replace("Hi", "Hi " + "there " * 50)
    report = post(editor, "check", token, draft=json.dumps(three_steps(text_en=long))).json()
    assert any("Over 2 segments" in p["message"] for p in report["problems"])


def test_the_preview_renders_a_step_for_a_contact_chosen_by_name(
    editor: TestClient, token: str, staff_accounts: NurtureApp
) -> None:
    with staff_accounts.sessions.begin() as session:
        session.add(
            Contact(
                first_name="Rosa",
                last_name="Diaz",
                email="rosa@example.com",
                timezone="America/Los_Angeles",
            )
        )
    draft = json.dumps(three_steps())
    answer = post(editor, "preview", token, draft=draft, step=0, contact="rosa diaz").json()
    assert answer["contact"] == "Rosa Diaz" and answer["error"] == ""
    assert "Hello Rosa." in answer["text"]
    html = post(editor, "preview.html", token, draft=draft, step=0, language="es")
    assert "Hello Maria." in html.text and "sandbox" in html.headers["content-security-policy"]
    text = post(editor, "preview", token, draft=draft, step=1, language="es").json()
    assert text["text"].endswith("Responda STOP para dejar de recibir mensajes.")


def test_send_me_a_test_goes_to_the_staff_email_marked_and_uncounted(
    editor: TestClient, token: str, channel: MemoryChannel, staff_accounts: NurtureApp
) -> None:
    answer = post(editor, "test", token, draft=json.dumps(three_steps()), step=0)
    assert answer.status_code == 200 and answer.json()["sent"], answer.text
    sent = channel.emails[-1]
    assert sent.to == EDITOR and sent.subject.startswith("[TEST] ")
    assert sent.message_id < 0 and sent.headers["X-Nurture-Test"] == "yes"
    with staff_accounts.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0
        assert campaign_counts(session) == {}


def _set_phone(app: NurtureApp, number: str | None) -> None:
    """What `nurture users phone EDITOR NUMBER` does (tests/staff/test_users_cli.py)."""
    with transaction(app.sessions) as session:
        accounts.set_phone(session, EDITOR, number)


def test_a_test_text_goes_only_to_the_number_on_the_staff_members_account(
    editor: TestClient, token: str, channel: MemoryChannel, staff_accounts: NurtureApp
) -> None:
    draft = json.dumps(three_steps())
    missing = post(editor, "test", token, draft=draft, step=1, phone="(310) 555-0199")
    assert missing.status_code == 422 and "nurture users phone" in missing.json()["error"]
    assert channel.texts == []  # a number typed on the page is never texted, nor kept
    with staff_accounts.sessions() as session:
        user = session.scalar(select(StaffUser).where(StaffUser.email == EDITOR))
        assert user is not None and user.phone is None
    _set_phone(staff_accounts, "+13105550199")
    answer = post(editor, "test", token, draft=draft, step=1, phone="(213) 555-0100")
    assert answer.json()["sent"] and "0199" in answer.json()["message"]
    assert [text.to for text in channel.texts] == ["+13105550199"]
    assert channel.texts[-1].body.startswith("[TEST] ")
    page = editor.get("/admin/sequences/new").text
    assert 'id="test-phone"' not in page and "+1******0199" in page
    assert f"nurture users phone {EDITOR} NUMBER" in page


def test_a_test_text_is_refused_for_a_suppressed_number(
    editor: TestClient, token: str, channel: MemoryChannel, staff_accounts: NurtureApp
) -> None:
    _set_phone(staff_accounts, "+13105550199")
    with transaction(staff_accounts.sessions) as session:
        suppress(session, "sms", "+13105550199", "stop", at=staff_accounts.clock())
    answer = post(editor, "test", token, draft=json.dumps(three_steps()), step=1)
    assert answer.status_code == 422 and "opted out of texts" in answer.json()["error"]
    assert channel.texts == []


def test_a_test_text_is_refused_outside_texting_hours_in_the_clinics_zone(
    editor: TestClient, token: str, channel: MemoryChannel, staff_accounts: NurtureApp
) -> None:
    _set_phone(staff_accounts, "+13105550199")
    zone = ZoneInfo(staff_accounts.settings.clinic.default_timezone)
    clock = staff_accounts.clock
    assert isinstance(clock, FrozenClock)
    local = clock().astimezone(zone)
    clock.now = datetime.combine(local.date(), time(22, 30), zone).astimezone(UTC)
    draft = json.dumps(three_steps())
    late = post(editor, "test", token, draft=draft, step=1)
    assert late.status_code == 422 and "outside texting hours" in late.json()["error"]
    assert "the clinic's time zone" in late.json()["error"] and channel.texts == []
    assert post(editor, "test", token, draft=draft, step=0).json()["sent"]  # an email may go
    clock.now = datetime.combine(local.date(), time(10, 0), zone).astimezone(UTC)
    assert post(editor, "test", token, draft=draft, step=1).json()["sent"]


def test_tests_are_limited_to_ten_a_minute(
    editor: TestClient, token: str, channel: MemoryChannel
) -> None:
    draft = json.dumps(three_steps())
    codes = [post(editor, "test", token, draft=draft, step=0).status_code for _ in range(11)]
    assert codes[:10] == [200] * 10 and codes[10] == 429
    assert len(channel.emails) == 10


def test_the_limit_is_counted_in_the_database_across_workers_and_restarts(
    editor: TestClient, token: str, channel: MemoryChannel, staff_accounts: NurtureApp
) -> None:
    """Tests another worker process sent are in the events table: this one counts them."""
    with transaction(staff_accounts.sessions) as session:
        user = session.scalar(select(StaffUser).where(StaffUser.email == EDITOR))
        assert user is not None
        now = staff_accounts.clock()
        session.add_all(
            Event(kind=TEST_SENT, occurred_at=now - timedelta(seconds=50), data={"by": user.id})
            for _ in range(TESTS_PER_MINUTE)
        )
    draft = json.dumps(three_steps())
    assert post(editor, "test", token, draft=draft, step=0).status_code == 429
    clock = staff_accounts.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(seconds=11)  # those ten are now more than a minute old
    assert post(editor, "test", token, draft=draft, step=0).status_code == 200
    assert len(channel.emails) == 1


def test_viewers_read_the_editor_but_cannot_send_or_save(
    viewer: TestClient, csrf: Any, channel: MemoryChannel
) -> None:
    page = viewer.get("/admin/sequences/new")
    assert page.status_code == 200 and "can read this editor but not save" in page.text
    token = csrf(page.text)
    draft = json.dumps(three_steps())
    assert post(viewer, "test", token, draft=draft, step=0).status_code == 403
    assert post(viewer, "save", token, draft=draft).status_code == 403
    assert channel.emails == []


def test_save_stores_a_version_and_reopens_it(editor: TestClient, token: str) -> None:
    draft = three_steps()
    saved = post(editor, "save", token, draft=json.dumps(draft)).json()
    assert saved["saved"] and "version 1" in saved["message"]
    again = post(editor, "save", token, draft=json.dumps(draft)).json()
    assert "No changes since version 1" in again["message"]
    taken = post(editor, "save", token, draft=json.dumps(draft), creating="true")
    assert taken.status_code == 409 and "already exists" in taken.json()["error"]
    page = editor.get("/admin/sequences/back-care/edit")
    assert page.status_code == 200 and "Reply STOP to opt out." in page.text


def test_a_sequence_written_in_html_opens_with_its_settings_and_a_note(editor: TestClient) -> None:
    page = editor.get("/admin/sequences/spasm-relief/edit")
    assert page.status_code == 200
    assert "written in HTML by a developer" in page.text
    assert editor.get("/admin/sequences/no-such-thing/edit").status_code == 404


def test_the_campaign_pages_link_to_the_editor(editor: TestClient) -> None:
    assert 'href="/admin/sequences/new"' in editor.get("/admin/campaigns").text
    page = editor.get("/admin/campaigns/spasm-relief")
    assert 'href="/admin/sequences/spasm-relief/edit"' in page.text


def test_the_counters_booking_link_is_full_length_but_never_works(
    editor: TestClient, token: str, staff_accounts: NurtureApp
) -> None:
    from templates.links import InvalidToken

    counted = post(editor, "count", token, text="Book {{ booking_link }}").json()
    link = counted["as_sent"].removeprefix("Book ")
    assert link.startswith(staff_accounts.settings.web.public_base_url + "/l/")
    with pytest.raises(InvalidToken):
        staff_accounts.signer.read_click(link.rsplit("/", 1)[1])


def test_a_draft_named_after_the_layouts_folder_is_refused_and_writes_nothing(
    editor: TestClient, token: str
) -> None:
    from templates import TEMPLATES_DIR

    before = sorted(path.name for path in (TEMPLATES_DIR / "layouts").iterdir())
    draft = three_steps()
    draft["name"] = "layouts"
    report = post(editor, "check", token, draft=json.dumps(draft)).json()
    assert any("layouts" in p["message"] for p in report["problems"])
    preview = post(editor, "preview", token, draft=json.dumps(draft), step=0).json()
    assert "layouts" in preview["error"]
    assert sorted(path.name for path in (TEMPLATES_DIR / "layouts").iterdir()) == before


def test_a_new_sequence_cannot_take_an_existing_ones_name(editor: TestClient, token: str) -> None:
    draft = three_steps()
    draft["name"] = "spasm-relief"
    answer = post(editor, "save", token, draft=json.dumps(draft), creating="true")
    assert answer.status_code == 409 and "already exists" in answer.json()["error"]
