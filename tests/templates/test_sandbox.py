"""Templates cannot reach Python internals or stall a worker; every failure is one typed error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from templates.renderer import TemplateRenderer, TemplateRenderError

ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ '{0.__class__}'.format('') }}",
    "{{ booking_link.__globals__ }}",
    "{{ booking_link.__code__ }}",
    "{{ contact.__class__ }}",
    "{{ contact['__class__'] }}",
    "{{ clinic|attr('__class__') }}",
    "{{ self.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{% set x = contact.update({'first_name': 'X'}) %}{{ x }}",  # immutable sandbox
    "{{ cycler.__init__.__globals__.os }}",  # cycler is not even offered
    "{{ lipsum() }}",
    "{{ 'a' * 100000 }}",
    "{{ [1] * 100000 }}",
    "{{ 9 ** 999999 }}",
    "{{ range(10 ** 9) | list }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_escapes_and_abuse_fail_as_a_template_error(
    source: str, scratch: Callable[..., TemplateRenderer], context: dict[str, Any]
) -> None:
    renderer = scratch(**{"seq/x.sms.txt": source})
    with pytest.raises(TemplateRenderError) as caught:
        renderer.render_sms("seq", "x", context)
    assert "seq/x.sms.txt" in str(caught.value)
    assert "<class" not in str(caught.value)


def test_missing_variable_is_an_error_not_a_blank(
    scratch: Callable[..., TemplateRenderer], context: dict[str, Any]
) -> None:
    renderer = scratch(**{"seq/x.sms.txt": "Hi {{ contact.nickname }}"})
    with pytest.raises(TemplateRenderError, match="missing variable"):
        renderer.render_sms("seq", "x", context)


def test_unknown_template_names_the_file(
    scratch: Callable[..., TemplateRenderer], context: dict[str, Any]
) -> None:
    with pytest.raises(TemplateRenderError, match=r"seq/absent\.sms\.txt not found"):
        scratch().render_sms("seq", "absent", context)


def test_a_template_cannot_leave_the_root(scratch: Callable[..., TemplateRenderer]) -> None:
    renderer = scratch(**{"seq/x.sms.txt": "hi"})
    with pytest.raises(TemplateRenderError):
        renderer.source("../../etc/passwd")


def test_html_is_autoescaped_and_text_is_not(
    scratch: Callable[..., TemplateRenderer], context: dict[str, Any]
) -> None:
    renderer = scratch(
        **{
            "seq/x.subject.txt": "For {{ contact.first_name }}",
            "seq/x.html": "<p>Hi {{ contact.first_name }}</p>",
            "seq/x.txt": "Hi {{ contact.first_name }}",
        }
    )
    context["contact"] = {"first_name": "<script>alert(1)</script>", "last_name": ""}
    email = renderer.render_email("seq", "x", context)
    assert "<script>" not in email.html and "&lt;script&gt;" in email.html
    assert email.text == "Hi <script>alert(1)</script>\n"
    assert email.subject == "For <script>alert(1)</script>"


def test_css_is_inlined_and_the_style_block_dropped(
    scratch: Callable[..., TemplateRenderer], context: dict[str, Any]
) -> None:
    renderer = scratch(
        **{
            "seq/x.subject.txt": "s",
            "seq/x.html": "<html><head><style>.b{color:red}</style></head>"
            '<body><p class="b">x</p></body></html>',
            "seq/x.txt": "x",
        }
    )
    html = renderer.render_email("seq", "x", context).html
    assert "<style>" not in html and 'style="color: red' in html


def test_compiled_templates_are_cached(scratch: Callable[..., TemplateRenderer]) -> None:
    renderer = scratch(**{"seq/x.sms.txt": "hi"})
    assert renderer.env.get_template("seq/x.sms.txt") is renderer.env.get_template("seq/x.sms.txt")


def test_sms_whitespace_is_collapsed_and_counted(
    scratch: Callable[..., TemplateRenderer], context: dict[str, Any]
) -> None:
    renderer = scratch(**{"seq/x.sms.txt": "Hi\n  {{ contact.first_name }}!\n"})
    sms = renderer.render_sms("seq", "x", context)
    assert sms.body == "Hi Maria!" and sms.info.segments == 1


def test_contact_view_exposes_only_the_allow_list() -> None:
    from types import SimpleNamespace

    from templates.renderer import contact_view

    contact = SimpleNamespace(
        first_name="Aiko",
        last_name=None,
        email="aiko@example.com",
        phone="+18185550103",
        custom_fields={"diagnosis": "sciatica", "referral_source": "event"},
    )
    assert contact_view(contact) == {"first_name": "Aiko", "last_name": ""}
    assert contact_view(contact, ("referral_source", "city")) == {
        "first_name": "Aiko",
        "last_name": "",
        "referral_source": "event",
        "city": "",
    }
