"""The clinic's spasm-relief nurture: its shape, and what every message says and never says."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from campaigns.definitions import load_sequence
from campaigns.validation import SAMPLE_CONTACTS, SAMPLE_ID, sample_composer
from core.settings import Settings
from templates.renderer import RenderedEmail, RenderedSms

SEQUENCE = load_sequence("spasm-relief")
NO_CURE = re.compile(r"\b(cure|guarantee|pain-free|permanent|miracle)", re.IGNORECASE)
NO_DIAGNOSIS = re.compile(r"\byou have (a|an)\b|\byour (herniat|bulging|diagnos)", re.IGNORECASE)


def test_shape_five_or_more_steps_over_about_three_weeks_mixing_channels() -> None:
    total = sum((step.delay for step in SEQUENCE.steps), timedelta(0))
    assert len(SEQUENCE.steps) >= 5
    assert timedelta(days=18) <= total <= timedelta(days=24)
    assert SEQUENCE.channels == {"email", "sms"}
    assert SEQUENCE.exit.booked and SEQUENCE.exit.unsubscribed_everywhere
    assert len({step.template for step in SEQUENCE.steps}) == len(SEQUENCE.steps)


def test_texts_stay_inside_tcpa_hours_and_two_segments() -> None:
    for step in SEQUENCE.steps:
        if step.channel == "sms":
            assert step.window.start.hour >= 8 and step.window.end.hour <= 20
            assert step.max_segments == 2


@pytest.mark.parametrize("step", SEQUENCE.steps, ids=lambda step: step.name)
def test_every_message(step: object, settings: Settings) -> None:
    composer = sample_composer(settings)
    for sample in SAMPLE_CONTACTS[:3]:
        rendered = composer.render(
            SEQUENCE,
            step,
            sample.as_contact(()),
            SAMPLE_ID,
            SAMPLE_ID,  # type: ignore[arg-type]
        )
        if isinstance(rendered, RenderedEmail):
            parts = [rendered.subject, rendered.html, rendered.text]
            assert rendered.html.count("/l/") == 1  # one clear call to action
            assert rendered.text.count("/l/") == 1
            assert "Unsubscribe" in rendered.html and "/u/" in rendered.text
            assert settings.clinic.postal_address in rendered.text
            assert "888-20-DECOM" in rendered.html and "888-20-DECOM" in rendered.text
        else:
            assert isinstance(rendered, RenderedSms)
            parts = [rendered.body]
            assert rendered.body.startswith("Spinal Decompression LA: ")
            assert rendered.body.endswith("Reply STOP to opt out.")
            assert rendered.info.encoding == "GSM-7" and rendered.info.segments <= 2
            assert rendered.body.count("/l/") == 1 and "888-20-DECOM" in rendered.body
        for part in parts:
            assert "888-20-DECOM" in part or (part is parts[0] and len(parts) == 3)
            assert not NO_CURE.search(part), NO_CURE.search(part)
            assert not NO_DIAGNOSIS.search(part)


def test_subjects_name_no_condition_of_the_reader(settings: Settings) -> None:
    """A subject is visible on a lock screen: it may greet by first name, never say what ails."""
    composer = sample_composer(settings)
    for step in SEQUENCE.steps:
        if step.channel == "email":
            email = composer.render(SEQUENCE, step, {"first_name": "Maria"}, 1, 1)
            assert isinstance(email, RenderedEmail)
            assert not re.search(r"\byour (back|pain|spasm|disc)", email.subject, re.IGNORECASE)
