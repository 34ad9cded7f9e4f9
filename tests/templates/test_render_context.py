"""Each part of a message renders from the same variables: a part cannot change them for the
next, and templates are offered no Jinja globals (a message has no use for them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from templates.renderer import TemplateRenderer, TemplateRenderError

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


def test_templates_are_offered_no_jinja_globals(
    scratch: Callable[..., TemplateRenderer], context: dict[str, Any]
) -> None:
    """A message has no use for range, namespace or lipsum; using one is a clear render error."""
    renderer = scratch(**FILES)
    assert renderer.env.globals == {}
    with pytest.raises(TemplateRenderError, match=r"missing variable: 'namespace'"):
        renderer.render_sms("seq", "globals", context)


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
