"""The event-started sequences (pre-visit, rebooking, rebooking-cancelled): valid for launch,
translated into Spanish, texts in GSM-7 within two segments, and no invented clinic facts."""

from __future__ import annotations

import re

import pytest

from campaigns.definitions import load_sequence
from campaigns.validation import SAMPLE_CONTACTS, SAMPLE_ID, sample_composer, validate_sequence
from core.settings import Settings
from templates.renderer import RenderedEmail, RenderedSms

NAMES = ("pre-visit", "rebooking", "rebooking-cancelled")
NO_CURE = re.compile(r"\b(cure|guarantee|pain-free|permanent|miracle|garantiza|sin dolor)", re.I)


@pytest.mark.parametrize("name", NAMES)
def test_valid_translated_and_started_by_an_event(name: str, settings: Settings) -> None:
    sequence = load_sequence(name)
    report = validate_sequence(sequence, settings)
    assert report.problems == []
    assert report.untranslated == {}
    assert sequence.trigger != "launch" and not sequence.exit.booked
    assert sequence.reenter_after is not None


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("language", ["en", "es"])
def test_every_message_reads_plainly(name: str, language: str, settings: Settings) -> None:
    sequence = load_sequence(name)
    composer = sample_composer(settings)
    contact = SAMPLE_CONTACTS[0].as_contact(sequence.custom_fields, language)
    for step in sequence.steps:
        rendered = composer.render(sequence, step, contact, SAMPLE_ID, SAMPLE_ID)
        if isinstance(rendered, RenderedSms):
            assert rendered.info.encoding == "GSM-7" and rendered.info.segments <= 2
            body = rendered.body
            assert "STOP" in body
        else:
            assert isinstance(rendered, RenderedEmail)
            body = rendered.text
            assert settings.clinic.postal_address in body  # the CAN-SPAM footer's layout
        assert not NO_CURE.search(body)
        assert settings.clinic.phone_display in body


def test_the_pre_visit_says_call_us_about_what_to_bring_and_parking(settings: Settings) -> None:
    """The clinic's material does not say what to bring or where to park: we do not guess."""
    sequence = load_sequence("pre-visit")
    composer = sample_composer(settings)
    for language, words in (("en", "where to park"), ("es", "estacionarse")):
        contact = SAMPLE_CONTACTS[0].as_contact(sequence.custom_fields, language)
        email = composer.render(sequence, sequence.steps[0], contact, SAMPLE_ID, SAMPLE_ID)
        assert isinstance(email, RenderedEmail)
        assert words in email.text and settings.clinic.phone_display in email.text
