"""Each part of a message renders from the same variables: a part cannot change them for the
next, and templates are offered only the few Jinja globals a message has a use for."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from templates.renderer import TemplateRenderer

FILES = {
    "layouts/base.html": "<title>{% block title %}{{ clinic.name }}{% endblock %}</title>"
    "{% block body %}{% endblock %}{% include 'parts/foot.html' %}",
    "parts/foot.html": "<p>{{ clinic.postal_address }} {{ contact.first_name }}</p>",
    "parts/macros.html": "{% macro greet(name) %}Hi {{ name|default('there') }}{% endmacro %}",
    "seq/child.html": "{% extends 'layouts/base.html' %}"
    "{% block title %}{{ super() }}!{% endblock %}"
    "{% block body %}{{ self.title() }} <a href='{{ link('booking') }}'>b</a>{% endblock %}",
    "seq/globals.sms.txt": "{% set ns = namespace(n=0) %}{% for i in range(3) %}"
    "{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }} {{ dict(a=1)|length }}",
    "seq/imports.sms.txt": "{% import 'parts/macros.html' as m %}"
    "{{ m.greet(contact.first_name) }}{% from 'parts/macros.html' import greet %} {{ greet() }}",
    "seq/sets.sms.txt": "{% set reason = 'changed' %}{% set step = step|upper %}"
    "{{ reason }} {{ step }}",
}


def test_a_part_cannot_change_the_variables_of_the_next(
    scratch: Callable[..., TemplateRenderer], context: dict[str, Any]
) -> None:
    renderer = scratch(**FILES)
    assert renderer.render_sms("seq", "sets", context).body == "changed WELCOME"
    assert context["reason"] == "you asked us" and context["step"] == "welcome"
    assert renderer.render_sms("seq", "sets", context).body == "changed WELCOME"


def test_only_the_kept_globals_are_offered(
    scratch: Callable[..., TemplateRenderer], context: dict[str, Any]
) -> None:
    renderer = scratch(**FILES)
    assert set(renderer.env.globals) == {"range", "dict", "namespace"}
    assert renderer.render_sms("seq", "globals", context).body == "3 1"


def test_layouts_includes_and_macros_render(
    scratch: Callable[..., TemplateRenderer], context: dict[str, Any]
) -> None:
    renderer = scratch(**FILES)
    html = renderer._render("seq/child.html", context)
    assert html == (
        "<title>Spinal Decompression LA!</title>Spinal Decompression LA! "
        '<a href="https://x.test/l/booking">b</a><p>1234 Wilshire Blvd, Los Angeles, CA 90017 '
        "Maria</p>"
    )
    assert renderer.render_sms("seq", "imports", context).body == "Hi Maria Hi there"
