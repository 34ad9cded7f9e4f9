"""CSS is inlined into each HTML template once, at load, and the emails look as they did when
each rendered page was inlined: same styles on the same elements, escaped values, own links."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Any

import css_inline
import pytest
from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment

from campaigns.compose import Composer
from campaigns.definitions import load_sequence
from core.settings import load_settings
from nurture.app import NurtureApp
from storage.models import Channel
from templates import TEMPLATES_DIR
from templates.inline_css import STYLESHEET
from templates.renderer import TemplateRenderer, TemplateRenderError

NAMES = ["Pat", "", "A & B", "<b>Bo</b>", 'Ann "Annie"', "O'Brien", "José", "日本"]
_ROUND_TRIP = css_inline.CSSInliner(inline_style_tags=False, keep_style_tags=True)


def inlined_per_message(name: str, context: dict[str, Any]) -> str:
    """The way it was: the template as written, rendered, then the whole page inlined."""
    env = ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    css = (TEMPLATES_DIR / STYLESHEET).read_text(encoding="utf-8")
    inliner = css_inline.CSSInliner(load_remote_stylesheets=False, extra_css=css)
    return inliner.inline(env.get_template(name).render(context))


def page_shape(html: str) -> str:
    """One serialization of the page (how `'` or a blank line is written aside)."""
    round_trip = (
        _ROUND_TRIP.inline if "<html" in html else partial(_ROUND_TRIP.inline_fragment, css="")
    )
    return re.sub(r">\s+<", "><", round_trip(html)).strip()


def test_real_emails_look_as_when_each_page_was_inlined() -> None:
    app = NurtureApp(settings=load_settings())
    composer = Composer(app.settings, TemplateRenderer(), app.signer)
    sequence = load_sequence("spasm-relief")
    for message, step in enumerate(s for s in sequence.steps if s.channel == Channel.EMAIL):
        for name in NAMES:
            contact = {"first_name": name, "last_name": name[::-1], "custom_fields": {}}
            context = composer.context(sequence, step, contact, message, message)
            html = composer.renderer.render_email("spasm-relief", step.template, context).html
            before = inlined_per_message(f"spasm-relief/{step.template}.html", context)
            assert page_shape(html) == page_shape(before)
            assert "<style" not in html and 'style="' in html


def test_a_steps_own_elements_and_the_layouts_are_styled(
    scratch: Callable[..., TemplateRenderer], context: dict[str, Any]
) -> None:
    renderer = scratch(
        **{
            STYLESHEET: ".wrap { color: red; } h2 { color: blue; } .note { font-size: 12px; }",
            "layouts/page.html": "<!DOCTYPE html><html><head>"
            "<title>{{ clinic.name }}</title></head>"
            '<body><div class="wrap">{% block body %}{% endblock %}</div></body></html>',
            "seq/x.subject.txt": "s",
            "seq/x.html": '{% extends "layouts/page.html" %}{% block body %}'
            '<h2>Hi {{ contact.first_name }}</h2><p class="note">n</p>{% endblock %}',
            "seq/x.txt": "t",
        }
    )
    html = renderer.render_email("seq", "x", context).html
    assert '<div class="wrap" style="color: red;">' in html
    assert '<h2 style="color: blue;">Hi Maria</h2>' in html
    assert '<p class="note" style="font-size: 12px;">n</p>' in html
    assert "<title>Spinal Decompression LA</title>" in html


def test_values_are_escaped_in_html_and_links_as_they_are_in_text(
    scratch: Callable[..., TemplateRenderer], context: dict[str, Any]
) -> None:
    renderer = scratch(
        **{
            "seq/x.subject.txt": "s",
            "seq/x.html": '<p>{{ contact.first_name }}</p><a href="{{ unsubscribe_url }}">u</a>',
            "seq/x.txt": "{{ unsubscribe_url }}",
        }
    )
    context["unsubscribe_url"] = 'https://x.test/u?a=1&b="2"<x>\''
    context["contact"] = {"first_name": "<script>x</script>", "last_name": ""}
    email = renderer.render_email("seq", "x", context)
    assert 'href="https://x.test/u?a=1&amp;b=&#34;2&#34;&lt;x&gt;&#39;"' in email.html
    assert "<p>&lt;script&gt;x&lt;/script&gt;</p>" in email.html
    assert email.text == context["unsubscribe_url"] + "\n"


@pytest.mark.parametrize(
    "html",
    [
        "<p>{% if contact.first_name %}{{ contact.first_name }}{% else %}there{% endif %}</p>",
        '<a href="{{ link(\'booking\') }}" title="{{ "}}" }} {# } #}">b</a>',
        "{% raw %}<p>{{ not jinja }}</p>{% endraw %}",
        "<ul>{% for i in [1, 2] %}<li>{{ i }}</li>{% endfor %}</ul>",
        "<!-- {{ step }} --><p>&amp; {{ step }} &middot;</p>",
    ],
)
def test_constructs_in_text_and_attribute_values_come_back_as_written(
    html: str, scratch: Callable[..., TemplateRenderer], context: dict[str, Any]
) -> None:
    renderer = scratch(**{"seq/x.html": html})
    written = renderer.env.from_string(html).render(context)  # not inlined: no stylesheet here
    assert page_shape(renderer._render("seq/x.html", context)) == page_shape(written)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"seq/x.html": "<p {{ step }}>x</p>"}, "inside a tag"),
        ({"seq/x.html": '<p class="{{ step }}">x</p>'}, "other than class, id or style"),
        ({"seq/x.html": "<p style='color: {{ step }}'>x</p>"}, "other than class, id or style"),
        ({"seq/x.html": "<p>&{{ step }}</p>"}, "inside a tag"),
        (
            {"seq/x.html": "<html><head><style>p { color: {{ step }} }</style></head></html>"},
            "<style> element",
        ),
        ({"seq/x.html": "<p>x</p>", STYLESHEET: "a[href^=http] { color: red }"}, "selector"),
        ({"seq/x.html": "<p>x</p>", STYLESHEET: "li:nth-child(2) { color: red }"}, "selector"),
        ({"seq/x.html": "<p>x</p>", STYLESHEET: "h2 + p { color: red }"}, "selector"),
        ({"seq/x.html": "<table>{{ step }}<tr><td>x</td></tr></table>"}, "moved or dropped"),
    ],
)
def test_a_template_whose_styles_could_depend_on_a_message_is_refused(
    files: dict[str, str],
    message: str,
    scratch: Callable[..., TemplateRenderer],
    context: dict[str, Any],
) -> None:
    renderer = scratch(**files)
    with pytest.raises(TemplateRenderError, match=r"^seq/x\.html line \d+: ") as caught:
        renderer._render("seq/x.html", context)
    assert message in str(caught.value)


def test_the_stylesheet_may_hold_comments_and_several_selectors(
    scratch: Callable[..., TemplateRenderer], context: dict[str, Any]
) -> None:
    renderer = scratch(
        **{
            STYLESHEET: "/* a[x] is fine in a comment */\nh1, .a > p, #b * { color: red; }",
            "seq/x.html": "<h1>t</h1>",
        }
    )
    assert renderer._render("seq/x.html", context) == '<h1 style="color: red;">t</h1>'
