"""Which links a message carries: an email always has its unsubscribe and preferences links; a
text is signed only the links its template prints (its way out is STOP)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from campaigns.compose import Composer
from campaigns.definitions import Sequence, load_sequence
from core.settings import load_settings
from providers.base import OutgoingEmail
from storage.models import Channel
from templates.links import ClickToken, ContactToken, LinkSigner
from templates.renderer import TemplateRenderer

CONTACT = {"first_name": "Pat", "last_name": "Lee", "custom_fields": {}}


class CountingSigner(LinkSigner):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.signed: list[str] = []

    def unsubscribe_url(self, contact_id: int, channel: Any, message_id: int | None = None) -> str:
        self.signed.append("unsubscribe")
        return super().unsubscribe_url(contact_id, channel, message_id)

    def preferences_url(self, contact_id: int) -> str:
        self.signed.append("preferences")
        return super().preferences_url(contact_id)


def composer(root: Path | None = None) -> Composer:
    settings = load_settings()
    signer = CountingSigner("k" * 40, settings.web.public_base_url, 30)
    renderer = TemplateRenderer(root) if root else TemplateRenderer()
    return Composer(settings, renderer, signer)


def sms_sequence(template: str) -> Sequence:
    return Sequence.model_validate(
        {
            "name": "links",
            "title": "links",
            "template_folder": "seq",
            "steps": [{"name": "only", "channel": "sms", "template": template}],
        }
    )


def test_a_text_that_prints_no_unsubscribe_link_is_not_signed_one() -> None:
    made = composer()
    sequence = load_sequence("spasm-relief")
    step = next(step for step in sequence.steps if step.channel == "sms")
    text = made.compose(
        sequence, step, CONTACT, message_id=7, contact_id=3, to="+13105550100", campaign="c"
    )
    assert "/l/" in text.body and "STOP" in text.body  # type: ignore[union-attr]
    assert made.signer.signed == []  # type: ignore[attr-defined]


def test_an_email_always_carries_both_links() -> None:
    made = composer()
    sequence = load_sequence("spasm-relief")
    step = next(step for step in sequence.steps if step.channel == "email")
    email = made.compose(
        sequence, step, CONTACT, message_id=8, contact_id=3, to="pat@example.com", campaign="c"
    )
    assert sorted(made.signer.signed) == ["preferences", "unsubscribe"]  # type: ignore[attr-defined]
    assert email.headers["List-Unsubscribe"].startswith("<http")  # type: ignore[union-attr]
    assert "/u/" in email.html and "/p/" in email.html  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("files", "signed"),
    [
        ({"seq/x.sms.txt": "Hi. Leave: {{ unsubscribe_url }}"}, ["unsubscribe"]),
        (  # read through the layout it extends
            {
                "layout.txt": "{% block body %}{% endblock %} Prefs: {{ preferences_url }}",
                "seq/x.sms.txt": '{% extends "layout.txt" %}{% block body %}Hi{% endblock %}',
            },
            ["preferences"],
        ),
        (  # a template named at render time could read anything: both are signed
            {"seq/x.sms.txt": "{% include step ~ '.txt' %}", "only.txt": "Hi"},
            ["unsubscribe", "preferences"],
        ),
    ],
)
def test_a_text_is_signed_the_links_its_templates_may_print(
    tmp_path: Path, files: dict[str, str], signed: list[str]
) -> None:
    for name, source in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(source)
    made = composer(tmp_path)
    sequence = sms_sequence("x")
    text = made.compose(
        sequence,
        sequence.steps[0],
        CONTACT,
        message_id=9,
        contact_id=4,
        to="+13105550100",
        campaign="c",
    )
    assert made.signer.signed == signed  # type: ignore[attr-defined]
    if "unsubscribe" in signed and "include" not in files["seq/x.sms.txt"]:
        assert "/u/" in text.body  # type: ignore[union-attr]


def test_each_email_carries_its_own_signed_links() -> None:
    """Two messages of one step to one contact: the same page, each with its own links."""
    made = composer()
    sequence = load_sequence("spasm-relief")
    step = next(step for step in sequence.steps if step.channel == "email")
    for message_id, contact_id in ((10, 3), (11, 4)):
        email = made.compose(
            sequence,
            step,
            CONTACT,
            message_id=message_id,
            contact_id=contact_id,
            to="pat@example.com",
            campaign="c",
        )
        assert isinstance(email, OutgoingEmail)
        links = dict(re.findall(r'href="[^"]*/([lup])/([^"]+)"', email.html))
        assert made.signer.read_click(links["l"]) == ClickToken(message_id, "booking")
        assert made.signer.read_unsubscribe(links["u"]) == ContactToken(
            contact_id, Channel.EMAIL, message_id
        )
        assert made.signer.read_preferences(links["p"]).contact_id == contact_id
        assert f"/l/{links['l']}" in email.text
        assert links["u"] in email.headers["List-Unsubscribe"]
