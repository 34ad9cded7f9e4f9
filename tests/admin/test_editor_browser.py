"""Issue 20 in Chromium: an editor writes a new three-step sequence in English and Spanish from
scratch, watches the segment count change as they type a text, gets a clear error for a text
without STOP wording, sends themselves a test, and saves it for review. Debian's chromium and a
real uvicorn server (the fixtures of tests/admin/test_browser.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from providers.memory import MemoryChannel
from tests.admin.test_browser import _shot, _sign_in, browser_page, server

__all__ = ["browser_page", "server"]  # fixtures, used by name

pytestmark = pytest.mark.browser

STOP_ERROR = "Step 2 (text, English): This text has no way to stop"


def _email(page: Any, step: int, language: str, subject: str, body: str) -> None:
    page.locator(f"#step-{step}-{language}-subject").fill(subject)
    page.locator(f"#step-{step}-{language}-preheader").fill("A short note from the clinic")
    page.locator(f"#step-{step}-{language}-body").fill(body)


def test_an_editor_writes_checks_tests_and_saves_a_sequence(
    browser_page: Any, channel: MemoryChannel
) -> None:
    page = browser_page
    _sign_in(page, "editor@clinic.test")
    page.goto("/admin/sequences/new")
    page.locator("#seq-name").fill("back-care")
    page.locator("#seq-title").fill("Back care")
    page.locator("#seq-reason").fill("you asked us about back care")
    page.locator("#seq-reason-es").fill("usted nos pidió información sobre su espalda")
    for step in (0, 2):
        _email(page, step, "en", "A note from us", 'Hi {{ first_name | default("there") }},\n\n'
               "Gentle care for your back. **We listen first.**")  # fmt: skip
        _email(page, step, "es", "Una nota", "Hola {{ first_name }}:\n\nCuidado amable.")

    # a text without STOP wording: the counter counts it, and the STOP problem is listed
    text = page.locator("#step-1-en-text")
    counter = page.locator(".step").nth(1).locator("fieldset[data-language=en] .sms-counter")
    text.fill("{{ clinic_name }}: Hi {{ first_name }}, call {{ clinic_phone }}.")
    page.get_by_text(re.compile(r"GSM-7 · 1 segment \(limit 2\)")).first.wait_for()
    assert "1 segment" in counter.inner_text()
    problems = page.locator("#problems")
    page.locator("#problems li", has_text=STOP_ERROR).wait_for()
    _shot(page, "editor-01-stop-error")

    # typing on: the live count moves to two segments, then the STOP wording clears the error
    text.press_sequentially(" We are here for you," * 8, delay=0)
    page.get_by_text(re.compile(r"2 segments \(limit 2\)")).first.wait_for()
    text.fill(
        "{{ clinic_name }}: Hi {{ first_name }}, book {{ booking_link }} or call "
        "{{ clinic_phone }}. Reply STOP to opt out."
    )
    page.locator("#step-1-es-text").fill(
        "{{ clinic_name }}: Hola {{ first_name }}, reserve {{ booking_link }} o llame al "
        "{{ clinic_phone }}. Responda STOP para dejar de recibir mensajes."
    )
    page.locator("#problems li", has_text=STOP_ERROR).wait_for(state="detached")
    page.locator("#check-status", has_text="No problems").wait_for()
    assert problems.locator("li").count() == 0

    # preview step 1 on a phone's width, then send myself a test
    page.locator("#preview-step").select_option("0")
    page.get_by_role("button", name="Mobile").click()
    page.locator("#preview-about", has_text="Shown for a sample contact").wait_for()
    frame = page.frame_locator("#preview-frame")
    frame.get_by_text("We listen first.").wait_for()
    _shot(page, "editor-02-preview")
    page.get_by_role("button", name="Send me a test").click()
    page.locator("#test-status", has_text="Test sent to").wait_for()
    assert channel.emails[-1].to == "editor@clinic.test"
    assert channel.emails[-1].subject == "[TEST] A note from us"

    # save, then ask for review on the campaign's page
    page.get_by_role("button", name="Save").click()
    page.locator("#save-status", has_text="Saved as version 1").wait_for()
    assert page.get_by_role("link", name="request review").get_attribute("href") == (
        "/admin/campaigns/back-care"
    )
    _shot(page, "editor-03-saved")
