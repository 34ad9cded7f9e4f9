"""The inbox as conversations: an editor answers a contact's reply (sent through the SMS channel,
recorded, refused at night and to an opted-out number) and resumes or ends the sequence the reply
paused; viewers cannot, and every post needs the session's CSRF token."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from campaigns import lifecycle
from campaigns.definitions import Sequence
from contacts.consent import record_consent
from core.clock import FrozenClock
from nurture.app import NurtureApp
from providers.memory import MemoryChannel
from storage.db import transaction
from storage.models import Contact, Enrollment, EnrollmentState, Event
from web.webhooks.twilio import handle_inbound

PHONE = "+13105550123"
LA = ZoneInfo("America/Los_Angeles")
QUESTION = "Can I come in on Saturday instead?"
SEQUENCE = Sequence.model_validate(
    {
        "name": "answer-test",
        "title": "answer test",
        "template_folder": "spasm-relief",
        "steps": [{"name": "first", "channel": "sms", "template": "02-cycle"}],
    }
)


def _token(client: TestClient) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/admin/inbound").text)
    assert match
    return match.group(1)


def _count(app: NurtureApp, kind: str) -> int:
    with app.sessions() as session:
        return session.scalar(select(func.count()).where(Event.kind == kind)) or 0


def _state(app: NurtureApp) -> str:
    with app.sessions() as session:
        return session.scalars(select(Enrollment.state)).one()


@pytest.fixture
def paused(staff_accounts: NurtureApp, frozen_clock: FrozenClock) -> tuple[NurtureApp, int, int]:
    """Maria, in Los Angeles and opted in to texts, replied to the sequence: it is paused."""
    app = staff_accounts
    with transaction(app.sessions) as session:
        maria = Contact(first_name="Maria", last_name="Lopez", phone=PHONE, timezone=LA.key)
        session.add(maria)
        session.flush()
        record_consent(session, maria.id, "sms", "opted_in", source="t", evidence="form",
                       occurred_at=app.clock())  # fmt: skip
        lifecycle.launch(session, SEQUENCE, now=app.clock())
        contact_id = maria.id
    frozen_clock.advance(minutes=1)
    handle_inbound(app, {"MessageSid": "SM1", "From": PHONE, "Body": QUESTION})
    with app.sessions() as session:
        enrollment_id = session.scalars(select(Enrollment.id)).one()
    assert _state(app) == EnrollmentState.PAUSED
    return app, contact_id, enrollment_id


def test_the_conversation_shows_the_name_masked_number_state_and_the_forms(
    editor: TestClient, paused: tuple[NurtureApp, int, int]
) -> None:
    html = editor.get("/admin/inbound").text
    assert "Maria Lopez" in html and "+1******0123" in html and PHONE not in html
    assert QUESTION in html and "answer-test: <strong>paused</strong>" in html
    _, contact_id, enrollment_id = paused
    assert f'action="/admin/inbound/contacts/{contact_id}/answer"' in html
    assert f'action="/admin/inbound/enrollments/{enrollment_id}/resume"' in html
    assert f'action="/admin/inbound/enrollments/{enrollment_id}/end"' in html


def test_an_editor_answers_through_the_sms_channel_and_it_is_recorded(
    editor: TestClient,
    frozen_clock: FrozenClock,
    paused: tuple[NurtureApp, int, int],
    channel: MemoryChannel,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, contact_id, _ = paused
    answer = "Yes, Saturday at 10 works. See you then!"
    frozen_clock.advance(minutes=2)
    with caplog.at_level(logging.INFO):
        response = editor.post(f"/admin/inbound/contacts/{contact_id}/answer",
                               data={"csrf_token": _token(editor), "body": answer})  # fmt: skip
    assert response.status_code == 303 and response.headers["location"].endswith("answered")
    [text] = channel.texts
    assert (text.to, text.body) == (PHONE, answer)
    with app.sessions() as session:
        [event] = session.scalars(select(Event).where(Event.kind == "staff_reply"))
    assert event.contact_id == contact_id and event.occurred_at == app.clock()
    assert event.data["by"] == "editor@clinic.test (staff #1)" and event.data["body"] == answer
    assert answer not in caplog.text and PHONE not in caplog.text  # no body or number in logs
    html = editor.get(response.headers["location"]).text
    assert "Answer sent and recorded." in html and answer in html
    assert html.index(answer) < html.index(QUESTION)  # newest first
    assert _state(app) == EnrollmentState.PAUSED  # answering does not resume by itself


def test_an_answer_at_night_is_refused_not_queued(
    editor: TestClient,
    frozen_clock: FrozenClock,
    paused: tuple[NurtureApp, int, int],
    channel: MemoryChannel,
) -> None:
    app, contact_id, _ = paused
    token = _token(editor)
    frozen_clock.now = datetime(2026, 12, 1, 22, 30, tzinfo=LA).astimezone(UTC)
    response = editor.post(f"/admin/inbound/contacts/{contact_id}/answer",
                           data={"csrf_token": token, "body": "Sure!"})  # fmt: skip
    assert response.status_code == 400
    assert "outside texting hours (08:00-21:00" in response.text
    assert channel.texts == [] and _count(app, "staff_reply") == 0


def test_an_answer_to_an_opted_out_number_is_refused(
    editor: TestClient, paused: tuple[NurtureApp, int, int], channel: MemoryChannel
) -> None:
    app, contact_id, _ = paused
    handle_inbound(app, {"MessageSid": "SM2", "From": PHONE, "Body": "STOP"})
    response = editor.post(f"/admin/inbound/contacts/{contact_id}/answer",
                           data={"csrf_token": _token(editor), "body": "Sorry!"})  # fmt: skip
    assert response.status_code == 400 and "Not sent" in response.text
    assert channel.texts == [] and _count(app, "staff_reply") == 0


def test_an_empty_answer_is_refused(
    editor: TestClient, paused: tuple[NurtureApp, int, int], channel: MemoryChannel
) -> None:
    _, contact_id, _ = paused
    response = editor.post(f"/admin/inbound/contacts/{contact_id}/answer",
                           data={"csrf_token": _token(editor), "body": "  "})  # fmt: skip
    assert response.status_code == 400 and "Write an answer first." in response.text
    assert channel.texts == []


def test_resume_and_end_with_one_click_each(
    editor: TestClient, paused: tuple[NurtureApp, int, int]
) -> None:
    app, _, enrollment_id = paused
    resumed = editor.post(f"/admin/inbound/enrollments/{enrollment_id}/resume",
                          data={"csrf_token": _token(editor)})  # fmt: skip
    assert resumed.status_code == 303 and _state(app) == EnrollmentState.ACTIVE
    again = editor.post(f"/admin/inbound/enrollments/{enrollment_id}/end",
                        data={"csrf_token": _token(editor)})  # fmt: skip
    assert again.status_code == 400 and "not paused" in again.text  # only a paused one
    handle_inbound(app, {"MessageSid": "SM3", "From": PHONE, "Body": "one more question"})
    ended = editor.post(f"/admin/inbound/enrollments/{enrollment_id}/end",
                        data={"csrf_token": _token(editor)})  # fmt: skip
    assert ended.status_code == 303 and _state(app) == EnrollmentState.EXITED
    assert _count(app, "enrollment_resumed") == 1 and _count(app, "enrollment_ended") == 1


@pytest.mark.parametrize("action", ["answer", "resume", "end"])
def test_a_viewer_cannot_answer_resume_or_end(
    viewer: TestClient, paused: tuple[NurtureApp, int, int], channel: MemoryChannel, action: str
) -> None:
    app, contact_id, enrollment_id = paused
    html = viewer.get("/admin/inbound").text
    assert "Send the answer" not in html and ">Resume</button>" not in html
    path = (f"/admin/inbound/contacts/{contact_id}/answer" if action == "answer"
            else f"/admin/inbound/enrollments/{enrollment_id}/{action}")  # fmt: skip
    response = viewer.post(path, data={"csrf_token": _token(viewer), "body": "hi"})
    assert response.status_code == 403
    assert channel.texts == [] and _state(app) == EnrollmentState.PAUSED


@pytest.mark.parametrize("action", ["answer", "resume", "end"])
def test_posts_without_the_csrf_token_are_refused(
    editor: TestClient, paused: tuple[NurtureApp, int, int], channel: MemoryChannel, action: str
) -> None:
    app, contact_id, enrollment_id = paused
    path = (f"/admin/inbound/contacts/{contact_id}/answer" if action == "answer"
            else f"/admin/inbound/enrollments/{enrollment_id}/{action}")  # fmt: skip
    for data in ({"body": "hi"}, {"csrf_token": "forged", "body": "hi"}):
        assert editor.post(path, data=data).status_code == 403
    assert channel.texts == [] and _state(app) == EnrollmentState.PAUSED
