"""Issue 18's journey in a real browser: a reply pauses the contact's sequence and shows in the
dashboard's inbox; an editor answers from there (sent through the SMS channel, recorded) and then
resumes the sequence with one click. Chromium from Debian, a real uvicorn server (the fixtures of
test_browser.py), the app's frozen clock."""

from __future__ import annotations

from sqlalchemy import select

from campaigns import lifecycle
from campaigns.definitions import Sequence
from core.clock import FrozenClock
from nurture.app import NurtureApp
from providers.memory import MemoryChannel
from storage.db import transaction
from storage.models import Enrollment, EnrollmentState, Event
from tests.admin.test_browser import _shot, _sign_in, browser_page, server
from web.webhooks.twilio import handle_inbound

__all__ = ["browser_page", "server"]  # fixtures, used by name

PHONE = "+13105550101"  # Maria Lopez, opted in to texts by the server fixture
QUESTION = "Can I come in on Saturday instead?"
ANSWER = "Yes, Saturday at 10 works. See you then!"
SEQUENCE = Sequence.model_validate(
    {
        "name": "inbox-journey",
        "title": "Inbox journey",
        "template_folder": "spasm-relief",
        "audience": {"require_consent": ["sms"]},
        "steps": [
            {"name": "first", "channel": "sms", "template": "02-cycle"},
            {"name": "second", "channel": "sms", "template": "02-cycle", "delay": "1d"},
        ],
    }
)


def _maria_state(app: NurtureApp) -> str:
    with app.sessions() as session:
        return session.scalars(select(Enrollment.state).where(Enrollment.contact_id == 1)).one()


def test_a_reply_pauses_shows_in_the_inbox_and_the_editors_answer_is_sent_and_recorded(
    browser_page, sqlite_app: NurtureApp, frozen_clock: FrozenClock, channel: MemoryChannel
) -> None:
    app, page = sqlite_app, browser_page
    with transaction(app.sessions) as session:
        lifecycle.launch(session, SEQUENCE, now=app.clock())
    app.planner.tick()
    assert app.dispatcher.tick().sent == 3  # the first text, to each of the three contacts
    frozen_clock.advance(minutes=5)
    handle_inbound(app, {"MessageSid": "SM-question", "From": PHONE, "Body": QUESTION})
    assert _maria_state(app) == EnrollmentState.PAUSED

    _sign_in(page, "editor@clinic.test")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Inbound texts").click()
    conversation = page.locator("tbody.conversation", has_text="Maria Lopez")
    assert QUESTION in conversation.inner_text()
    assert "inbox-journey: paused" in conversation.inner_text()
    assert PHONE not in page.content()  # masked, as everywhere on the dashboard
    _shot(page, "11-inbox-paused")

    frozen_clock.advance(minutes=2)
    conversation.get_by_label("Answer Maria Lopez by text").fill(ANSWER)
    conversation.get_by_role("button", name="Send the answer").click()
    page.wait_for_url("**answered")
    assert "Answer sent and recorded." in page.content()
    answers = [text for text in channel.texts if text.body == ANSWER]
    assert [text.to for text in answers] == [PHONE]
    with app.sessions() as session:
        [event] = session.scalars(select(Event).where(Event.kind == "staff_reply"))
    assert event.contact_id == 1 and event.data["body"] == ANSWER
    assert event.occurred_at == app.clock()
    assert _maria_state(app) == EnrollmentState.PAUSED  # answering alone does not resume

    page.get_by_role("button", name="Resume inbox-journey for Maria Lopez").click()
    page.wait_for_load_state()
    assert _maria_state(app) == EnrollmentState.ACTIVE
    _shot(page, "12-inbox-answered")
