"""Which HTML templates may render with tokens for their URLs: only those that print them as is."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from templates.bare_urls import prints_urls_bare
from templates.renderer import TemplateRenderer


@pytest.mark.parametrize(
    "source",
    [
        '<a href="{{ unsubscribe_url }}">u</a> <a href="{{ preferences_url }}">p</a>',
        '<a href="{{ link("booking") }}">{{ booking_link() }}</a>{{ link(destination="site") }}',
        "{% for n in range(3) %}{% if contact.first_name %}{{ link() }}{% endif %}{% endfor %}",
        "{% set ns = namespace(x=1) %}{{ ns.x }}{{ clinic.name|upper }}{{ unsubscribe_url }}",
        "{% macro hello(name) %}Hi {{ name }}{% endmacro %}{{ hello(contact.first_name) }}",
        "{% block a %}{{ unsubscribe_url }}{% endblock %}{{ self.a() }}",
    ],
)
def test_urls_printed_as_is(source: str, scratch: Callable[..., TemplateRenderer]) -> None:
    renderer = scratch(**{"seq/x.html": source})
    assert prints_urls_bare(renderer.env, "seq/x.html")


@pytest.mark.parametrize(
    "source",
    [
        "{{ unsubscribe_url|upper }}",
        "{{ unsubscribe_url[:20] }}",
        "{{ unsubscribe_url ~ '&x=1' }}",
        "{{ link('booking')|truncate(20) }}",
        "{{ link(unsubscribe_url) }}",
        "{% if preferences_url %}x{% endif %}",
        "{{ 'x' if link() else 'y' }}",
        "{% set u = unsubscribe_url %}{{ u }}",
        "{% set link = 'x' %}{{ link }}",
        "{% for unsubscribe_url in [1] %}{{ unsubscribe_url }}{% endfor %}",
        "{% with u = link() %}{{ u }}{% endwith %}",
        "{{ dict(u=unsubscribe_url) }}",
        "{% macro m() %}{{ link() }}{% endmacro %}{{ m() }}",
        "{% macro m() %}{{ caller()|upper }}{% endmacro %}"
        "{% call m() %}{{ unsubscribe_url }}{% endcall %}",
        "{% filter lower %}{{ unsubscribe_url }}{% endfilter %}",
        "{% set s %}{{ unsubscribe_url }}{% endset %}{{ s }}",
        "{% autoescape false %}{{ unsubscribe_url }}{% endautoescape %}",
        "{% for x in [1] recursive %}{{ unsubscribe_url }}{% endfor %}",
        "{% block a %}{{ unsubscribe_url }}{% endblock %}{{ self.a()|upper }}",
        "{{ self }}",
        "{% include step ~ '.html' %}",
    ],
)
def test_urls_reworked_or_captured(source: str, scratch: Callable[..., TemplateRenderer]) -> None:
    renderer = scratch(**{"seq/x.html": source})
    assert not prints_urls_bare(renderer.env, "seq/x.html")


def test_every_template_reached_is_read(scratch: Callable[..., TemplateRenderer]) -> None:
    renderer = scratch(
        **{
            "layouts/page.html": '{% block body %}{% endblock %}<a href="{{ unsubscribe_url }}">',
            "layouts/upper.html": "{% block body %}{% endblock %}{{ unsubscribe_url|upper }}",
            "parts/footer.html": "{{ preferences_url }}",
            "parts/footer.txt": "{{ preferences_url }}",  # not autoescaped: printed raw
            "parts/macros.html": "{% macro m() %}{{ link() }}{% endmacro %}",
            "layouts/filtered.html": "{% filter upper %}"
            "{% block body %}{% endblock %}{% endfilter %}",
            "seq/ok.html": '{% extends "layouts/page.html" %}'
            '{% block body %}{% include "parts/footer.html" %}{% endblock %}',
            "seq/layout.html": '{% extends "layouts/upper.html" %}',
            "seq/text.html": '{% include "parts/footer.txt" %}',
            "seq/captured.html": "{% filter upper %}"
            '{% include "parts/footer.html" %}{% endfilter %}',
            "seq/macro.html": '{% import "parts/macros.html" as p %}{{ p.m()|upper }}',
            "seq/block.html": '{% extends "layouts/filtered.html" %}'
            "{% block body %}{{ unsubscribe_url }}{% endblock %}",
        }
    )
    verdicts = {
        name: prints_urls_bare(renderer.env, f"seq/{name}.html")
        for name in ("ok", "layout", "text", "captured", "macro", "block")
    }
    assert verdicts == {
        "ok": True,
        "layout": False,
        "text": False,
        "captured": False,
        "macro": False,
        "block": False,  # the layout uppercases whatever the page puts in its block
    }


def test_the_shipped_email_templates_print_urls_as_is() -> None:
    renderer = TemplateRenderer()
    pages = sorted((renderer.root / "spasm-relief").glob("*.html"))
    assert pages
    for page in pages:
        assert prints_urls_bare(renderer.env, f"spasm-relief/{page.name}"), page.name
