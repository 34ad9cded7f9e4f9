"""The renderer's own context handling renders what Template.render renders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from jinja2 import Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

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


@pytest.mark.parametrize("name", ["seq/child.html", "seq/globals.sms.txt", "seq/imports.sms.txt"])
def test_parts_render_as_template_render_does(
    name: str, scratch: Callable[..., TemplateRenderer], context: dict[str, Any]
) -> None:
    renderer = scratch(**FILES)
    expected = renderer.env.get_template(name).render(context)
    assert renderer._render(name, renderer._variables(context)) == expected


def test_a_part_cannot_change_the_variables_of_the_next(
    scratch: Callable[..., TemplateRenderer], context: dict[str, Any]
) -> None:
    renderer = scratch(**FILES)
    variables = renderer._variables(context)
    assert renderer._render("seq/sets.sms.txt", variables) == "changed WELCOME"
    assert variables["reason"] == "you asked us" and variables["step"] == "welcome"
    assert renderer.render_sms("seq", "sets", context).body == "changed WELCOME"


def test_only_the_kept_globals_are_offered(
    scratch: Callable[..., TemplateRenderer], context: dict[str, Any]
) -> None:
    renderer = scratch(**FILES)
    assert set(renderer._variables(context)) - set(context) == {"range", "dict", "namespace"}
    assert renderer.render_sms("seq", "globals", context).body == "3 1"


@pytest.mark.parametrize(
    "attribute", ["first_name", "missing", "items", "update", "__class__", "__dict__", "keys"]
)
def test_dict_attributes_resolve_as_the_sandbox_resolves_them(
    attribute: str, scratch: Callable[..., TemplateRenderer]
) -> None:
    env = scratch().env
    contact = {"first_name": "Aiko", "items": "an item", "update": "u", "__dict__": "d"}
    ours, sandbox = (
        env.getattr(contact, attribute),
        ImmutableSandboxedEnvironment.getattr(env, contact, attribute),
    )
    assert type(ours) is type(sandbox)
    if not isinstance(ours, Undefined):
        assert ours == sandbox
