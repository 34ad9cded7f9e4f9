"""Preview: every step rendered for a sample or a real contact, in the terminal and an HTML file."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from campaigns.definitions import load_sequence
from campaigns.preview import build_preview, describe_delay, write_html
from core.errors import InputError
from core.settings import Settings
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import Contact


def test_all_steps_for_the_sample_contact(settings: Settings, tmp_path: Path) -> None:
    preview = build_preview(load_sequence("spasm-relief"), settings)

    assert [item.number for item in preview.steps] == list(range(1, 9))
    assert all(item.error is None and not item.problems for item in preview.steps)
    assert [describe_delay(item.send_after) for item in preview.steps] == [
        "at enrollment", "day 3", "day 6", "day 10", "day 14", "day 17", "day 21",
        "day 16",  # the reminder: 2 days after first-visit, for those who did not click
    ]  # fmt: skip
    path = write_html(preview, tmp_path)
    assert path == tmp_path / "spasm-relief.html"
    page = path.read_text(encoding="utf-8")
    welcome = preview.steps[0].email
    assert welcome is not None
    assert html.escape(welcome.subject) in page
    assert "<iframe sandbox" in page and 'srcdoc="&lt;!DOCTYPE html&gt;' in page
    assert "Reply STOP to opt out." in page and "GSM-7 · 2" in page


def test_one_step_by_number_or_name(settings: Settings, tmp_path: Path) -> None:
    sequence = load_sequence("spasm-relief")
    by_number = build_preview(sequence, settings, step="2")
    by_name = build_preview(sequence, settings, step="cycle-text")
    assert [i.step.name for i in by_number.steps] == [i.step.name for i in by_name.steps]
    assert write_html(by_number, tmp_path).name == "spasm-relief-step2.html"
    sms = by_number.steps[0].sms
    assert sms is not None and sms.info.encoding == "GSM-7" and sms.info.segments <= 2


@pytest.mark.parametrize("step", ["0", "9", "nope"])
def test_unknown_step_is_an_input_error(settings: Settings, step: str) -> None:
    with pytest.raises(InputError, match="has steps 1-8"):
        build_preview(load_sequence("spasm-relief"), settings, step=step)


def test_a_real_contact_sees_only_allow_listed_fields(sqlite_app: NurtureApp) -> None:
    with transaction(sqlite_app.sessions) as session:
        contact = Contact(
            first_name="Aiko",
            last_name="Tanaka",
            email="aiko@example.com",
            phone="+18185550103",
            timezone="America/Los_Angeles",
            custom_fields={"diagnosis": "herniated L4-L5"},
        )
        session.add(contact)
        session.flush()
        preview = build_preview(
            load_sequence("spasm-relief"),
            sqlite_app.settings,
            contact=contact,
            contact_id=contact.id,
            contact_label="contact 1",
        )
    everything = " ".join(
        (i.email.subject + i.email.html + i.email.text) if i.email else i.sms.body  # type: ignore[union-attr]
        for i in preview.steps
    )
    assert "Hi Aiko" in everything
    for private in ("herniated", "aiko@example.com", "8185550103", "Tanaka"):
        assert private not in everything


def test_preview_links_do_not_work_in_production(
    sqlite_app: NurtureApp, settings: Settings
) -> None:
    """Previews sign with the validation-only key: the real signer rejects their tokens."""
    from templates.links import InvalidToken

    preview = build_preview(load_sequence("spasm-relief"), settings, step="1")
    email = preview.steps[0].email
    assert email is not None
    token = re.search(r"/u/([^\s]+)", email.text).group(1)  # type: ignore[union-attr]
    with pytest.raises(InvalidToken):
        sqlite_app.signer.read_unsubscribe(token)


def test_a_contact_whose_text_overflows_is_flagged(settings: Settings) -> None:
    preview = build_preview(
        load_sequence("demo"),
        settings,
        step="2",
        contact={"first_name": "Zo\u00eb"},  # ë is outside GSM-7: the whole text turns UCS-2
        contact_label="contact 7",
    )
    item = preview.steps[0]
    assert item.sms is not None and item.sms.info.ucs2_characters == ("\u00eb",)
    assert any(p.startswith("for contact 7 this text is 4 segments") for p in item.problems)
