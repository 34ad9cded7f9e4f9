"""Markdown emails and plain texts written in the dashboard: sanitised, placeholders only, and
rendered by the same TemplateRenderer as every other step."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from templates import TEMPLATES_DIR
from templates.markdown_body import (
    EmailSource,
    allowed_placeholders,
    body_html,
    plain_template,
    read_email_source,
    sanitize_html,
)
from templates.renderer import CONTACT_FIELDS, TemplateRenderer, TemplateRenderError


@pytest.fixture
def root(tmp_path: Path) -> Path:
    os.symlink(TEMPLATES_DIR / "layouts", tmp_path / "layouts", target_is_directory=True)
    (tmp_path / "care" / "es").mkdir(parents=True)
    return tmp_path


def context(first_name: str = "Ann") -> dict[str, Any]:
    return {
        "contact": {"first_name": first_name, "last_name": "Lee"},
        "clinic": {
            "name": "Spine Clinic",
            "phone": "888-20-DECOM",
            "postal_address": "1 Main St, Los Angeles, CA",
            "website": "https://clinic.test",
        },
        "booking_link": lambda destination="booking": "https://go.test/l/abc",
        "unsubscribe_url": "https://go.test/u/abc",
        "preferences_url": "https://go.test/p/abc",
        "reason": "you asked us to keep in touch",
        "step": "welcome",
    }


def write_email(root: Path, body: str, subject: str = "Hello", folder: str = "care") -> None:
    source = EmailSource(subject, "A short note", body).dump()
    (root / folder / "01-welcome.email.md").write_text(source, encoding="utf-8")


def test_sanitizer_strips_script_handlers_and_javascript_links() -> None:
    dirty = (
        '<p onclick="steal()">Hi<script>alert(1)</script></p>'
        '<a href="javascript:alert(1)">x</a><a href="https://ok.test/">ok</a>'
        '<img src="https://t.test/pixel"><span style="color:red">red</span>'
    )
    clean = sanitize_html(dirty)
    assert "script" not in clean and "alert" not in clean
    assert "onclick" not in clean and "javascript:" not in clean
    assert "<img" not in clean and "style=" not in clean
    assert '<a href="https://ok.test/"' in clean


def test_raw_html_in_markdown_is_shown_as_text_never_run(root: Path) -> None:
    write_email(root, 'Hi <script>alert(1)</script> <b onclick="x()">bold</b>')
    email = TemplateRenderer(root).render_email("care", "01-welcome", context())
    assert "<script>" not in email.html and "<b onclick" not in email.html
    assert "&lt;script&gt;" in email.html


def test_only_http_links_survive(root: Path) -> None:
    html = body_html("[a](javascript:alert(1)) [b](https://clinic.test/x) [c](/relative)")
    assert 'href="https://clinic.test/x"' in html
    assert "javascript" not in html.split("[a]")[0]
    assert 'href="/relative"' not in html


@pytest.mark.parametrize(
    "written",
    [
        "{% if first_name %}Hi{% endif %}",
        "{{ first_name.__class__ }}",
        "{{ booking_link() }}",
        "{{ first_name | upper }}",
        "{# a comment #}",
        "{{ 7 * 7 }}",
    ],
)
def test_jinja_beyond_placeholders_is_refused_in_plain_words(root: Path, written: str) -> None:
    write_email(root, f"Hello {written}")
    with pytest.raises(TemplateRenderError, match="only placeholders like"):
        TemplateRenderer(root).render_email("care", "01-welcome", context())


def test_braces_made_by_markdown_entities_never_reach_jinja(root: Path) -> None:
    write_email(root, "&#123;&#123; 7*7 &#125;&#125;")
    email = TemplateRenderer(root).render_email("care", "01-welcome", context())
    assert "{{ 7*7 }}" in email.html and "49" not in email.html


def test_placeholders_and_defaults_fill_in_escaped(root: Path) -> None:
    write_email(
        root,
        'Hi **{{ first_name | default("there") }}**, [book now]({{ booking_link }}).',
        subject='{{ first_name | default("Friend") }}, a note from {{ clinic_name }}',
    )
    renderer = TemplateRenderer(root)
    email = renderer.render_email("care", "01-welcome", context("<Ann>"))
    assert email.subject == "<Ann>, a note from Spine Clinic"
    assert "<strong>&lt;Ann&gt;</strong>" in email.html
    assert '<a href="https://go.test/l/abc"' in email.html
    assert "book now: https://go.test/l/abc" in email.text
    nameless = renderer.render_email("care", "01-welcome", context(""))
    assert nameless.subject.startswith("Friend,") and "<strong>there</strong>" in nameless.html


def test_the_fixed_layout_and_its_footer_surround_the_body(root: Path) -> None:
    write_email(root, "Body words")
    email = TemplateRenderer(root).render_email("care", "01-welcome", context())
    assert "1 Main St, Los Angeles, CA" in email.html and "https://go.test/u/abc" in email.html
    assert "A short note" in email.html  # the preheader
    assert "style=" in email.html  # the layout's stylesheet is inlined as for every email
    assert "Body words" in email.text and "Unsubscribe: https://go.test/u/abc" in email.text


def test_a_spanish_step_uses_the_spanish_layout(root: Path) -> None:
    write_email(root, "Hola", folder="care/es")
    renderer = TemplateRenderer(root)
    assert renderer.exists("care/es/01-welcome.html")
    email = renderer.render_email("care/es", "01-welcome", context())
    assert 'lang="es"' in email.html


def test_a_placeholder_cannot_be_a_link_address_except_the_booking_link() -> None:
    with pytest.raises(Exception, match="link's address"):
        body_html("[x]({{ first_name }})")


def test_plain_texts_render_as_written(root: Path) -> None:
    (root / "care" / "02-nudge.sms.plain").write_text(
        "{{ clinic_name }}: Hi {{ first_name }}. Reply STOP to opt out.\n", encoding="utf-8"
    )
    text = TemplateRenderer(root).render_sms("care", "02-nudge", context())
    assert text.body == "Spine Clinic: Hi Ann. Reply STOP to opt out."
    assert text.info.segments == 1


def test_lone_braces_in_a_text_are_refused() -> None:
    with pytest.raises(Exception, match="curly braces"):
        plain_template("a { b", "the text")


def test_the_email_file_round_trips() -> None:
    source = EmailSource("Hi {{ first_name }}", "Pre", "Para one\n\nPara two")
    assert read_email_source(source.dump()) == source


def test_the_picker_lists_the_renderers_fields_custom_fields_and_clinic_details() -> None:
    names = [p.name for p in allowed_placeholders(CONTACT_FIELDS, ("favorite_color",))]
    assert names[: len(CONTACT_FIELDS)] == list(CONTACT_FIELDS)
    assert "favorite_color" in names and "booking_link" in names and "clinic_phone" in names
