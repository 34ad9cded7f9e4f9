"""Issue 19's journey in a real browser: a person signs up on the hosted form, confirms the
email by its link, and gets the running campaign's first email at the next planner and dispatch
tick; their mobile gets only 'Reply YES' until a YES comes through the Twilio webhook, and then
the campaign's texts. The contact's dashboard page names the campaign they joined. And the
embeddable form shows in a frame on the clinic's site and nowhere else.

Chromium from Debian and a real uvicorn server (the fixtures of tests/admin/test_browser.py),
the app's frozen clock, the in-memory channel the test app sends through."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from campaigns import lifecycle
from campaigns.definitions import Sequence
from core.clock import FrozenClock
from nurture.app import NurtureApp
from providers.memory import MemoryChannel
from storage.db import transaction
from storage.models import ConsentStatus, Contact, Enrollment
from tests.admin.test_browser import _shot, _sign_in, browser_page, server

__all__ = ["browser_page", "server"]  # fixtures, used by name

EMAIL, PHONE = "rosa.diaz@example.com", "+13105550177"
TWILIO_TOKEN = "twilio-test-auth-token-0123456789"  # tests/web/conftest.py sets it
PUBLIC = "http://127.0.0.1:8000"  # web.public_base_url: links and Twilio's signatures use it
SEQUENCE = Sequence.model_validate(
    {
        "name": "welcome-journey",
        "title": "Welcome journey",
        "template_folder": "spasm-relief",
        "audience": {"require_consent": ["email"]},
        "steps": [
            {"name": "welcome", "channel": "email", "template": "01-welcome"},
            {"name": "cycle", "channel": "sms", "template": "02-cycle", "delay": "1d"},
        ],
    }
)


def _to_rosa(channel: MemoryChannel) -> tuple[list[Any], list[Any]]:
    emails = [email for email in channel.emails if email.to == EMAIL]
    return emails, [text for text in channel.texts if text.to == PHONE]


def _tick(app: NurtureApp) -> None:
    app.planner.tick()
    app.dispatcher.tick()


def _text_yes(page: Any, server: str) -> str:
    """A YES through the Twilio inbound webhook, signed as Twilio signs it."""
    params = {"MessageSid": "SM-rosa-yes", "From": PHONE, "To": "+18882033266", "Body": "YES"}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(
        f"{PUBLIC}/webhooks/twilio/inbound", params
    )
    answer = page.request.post(
        f"{server}/webhooks/twilio/inbound", form=params, headers={"X-Twilio-Signature": signature}
    )
    assert answer.status == 200
    return str(answer.text())


def test_a_sign_up_gets_the_first_nurture_email_and_texts_only_after_yes(
    browser_page: Any,
    server: str,
    sqlite_app: NurtureApp,
    frozen_clock: FrozenClock,
    channel: MemoryChannel,
) -> None:
    app, page = sqlite_app, browser_page
    with transaction(app.sessions) as session:
        lifecycle.launch(session, SEQUENCE, now=app.clock())

    page.goto("/join")
    page.get_by_label("First name").fill("Rosa")
    page.get_by_label("Last name").fill("Diaz")
    page.get_by_label("Email", exact=True).fill(EMAIL)
    page.get_by_label("Mobile number (optional)").fill("(310) 555-0177")
    page.get_by_label("I agree to receive marketing texts").check()
    _shot(page, "join-01-form")
    frozen_clock.advance(seconds=8)  # a person takes a few seconds (web.join_guard)
    page.get_by_role("button", name="Sign up").click()
    page.get_by_role("heading", name="Almost done: please confirm").wait_for()

    [confirmation], [prompt] = _to_rosa(channel)
    assert prompt.body.startswith("Spinal Decompression LA: Reply YES to confirm.")
    _tick(app)
    assert _to_rosa(channel) == ([confirmation], [prompt])  # nothing before the email is confirmed

    link = re.search(rf"{re.escape(PUBLIC)}(/join/confirm/\S+)", confirmation.text)
    assert link, "the confirmation email holds its signed link"
    page.goto(link.group(1))
    page.get_by_role("button", name="Confirm my email address").click()
    page.get_by_role("heading", name="Thank you: your email address is confirmed").wait_for()

    frozen_clock.advance(minutes=1)
    _tick(app)  # the planner enrolls her and plans the welcome; the dispatcher sends it
    emails, texts = _to_rosa(channel)
    assert len(emails) == 2 and emails[1].categories != confirmation.categories
    assert "unsubscribe" in emails[1].text.lower()  # a nurture email, with its way out
    assert texts == [prompt]  # no marketing text: the number is not confirmed

    with app.sessions() as session:
        rosa = session.scalars(select(Contact).where(Contact.email == EMAIL)).one()
        assert (rosa.email_consent, rosa.sms_consent) == (ConsentStatus.OPTED_IN, None)
        state = select(Enrollment.state).where(Enrollment.contact_id == rosa.id)
        assert session.scalars(state).one() == "active"
    _sign_in(page, "viewer@clinic.test")
    page.goto(f"/admin/contacts/{rosa.id}")
    joined = page.get_by_role("region", name="Enrollments")
    assert "welcome-journey" in joined.inner_text() and "active" in joined.inner_text()
    assert "sign-up form" in page.locator("dl").first.inner_text()
    _shot(page, "join-02-contact-joined")

    frozen_clock.advance(hours=2)
    assert "you are confirmed" in _text_yes(page, server)
    frozen_clock.advance(days=1)
    _tick(app)
    _tick(app)  # the text step, a day after the welcome settled
    emails, texts = _to_rosa(channel)
    assert len(texts) == 2 and texts[0] == prompt
    assert "stop" in texts[1].body.lower()  # a marketing text, with its way out


class ClinicPage(BaseHTTPRequestHandler):
    """The clinic's website: one page that embeds our form with the dashboard's snippet."""

    form_url = ""

    def do_GET(self) -> None:
        body = (
            f'<html><body><h1>Our clinic</h1><iframe src="{self.form_url}" title="Sign up" '
            'style="width:100%;height:760px;border:0"></iframe></body></html>'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def clinic_site(monkeypatch: pytest.MonkeyPatch) -> Iterator[HTTPServer]:
    """The clinic's website on another loopback port, its `localhost` origin the one allowed to
    frame the form (set before the app loads its settings). Loopback, as our server is: Chromium
    refuses a public page's frame of a loopback address (Local Network Access)."""
    site = HTTPServer(("127.0.0.1", 0), ClinicPage)
    port = site.server_address[1]
    monkeypatch.setenv("NURTURE_SIGNUP__EMBED_ORIGINS", f'["http://localhost:{port}"]')
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    yield site
    site.shutdown()
    thread.join(timeout=5)


def test_the_embedded_form_shows_on_the_clinics_site_and_nowhere_else(
    clinic_site: HTTPServer, browser_page: Any, server: str
) -> None:
    page, port = browser_page, clinic_site.server_address[1]
    ClinicPage.form_url = f"{server}/join?lang=es&embed=1"
    page.goto(f"http://localhost:{port}/")
    form = page.frame_locator("iframe").get_by_label("Correo electrónico")
    form.wait_for()
    assert page.frame_locator("iframe").get_by_role("button").inner_text() == "Inscribirme"
    _shot(page, "join-03-embedded")
    page.goto(f"http://127.0.0.1:{port}/")  # the same page from an origin not allowed
    page.wait_for_load_state("load")
    page.wait_for_timeout(300)
    assert page.frame_locator("iframe").get_by_label("Correo electrónico").count() == 0
