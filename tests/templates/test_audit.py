"""The static pass sees every branch of a template and everything it extends or includes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from templates.audit import inspect_template, looks_like_health_field
from templates.renderer import TemplateRenderer, TemplateRenderError


def test_contact_fields_links_and_variables_in_every_branch(
    scratch: Callable[..., TemplateRenderer],
) -> None:
    renderer = scratch(
        **{
            "layouts/base.txt": "{% block body %}{% endblock %} {{ link('article') }}",
            "seq/x.sms.txt": '{% extends "layouts/base.txt" %}{% block body %}'
            "{% if false %}{{ contact.email }}{{ contact['phone'] }}{{ secret }}{% endif %}"
            "{{ contact.first_name }} {{ booking_link() }}{% endblock %}",
        }
    )
    usage = inspect_template(renderer, "seq/x.sms.txt")
    assert usage.templates == ["seq/x.sms.txt", "layouts/base.txt"]
    assert usage.contact_fields == {"email", "phone", "first_name"}
    assert usage.destinations == {"booking", "article"}
    assert "secret" in usage.variables
    assert not usage.whole_contact and usage.dynamic_destinations == 0


def test_whole_contact_dynamic_links_and_private_names(
    scratch: Callable[..., TemplateRenderer],
) -> None:
    renderer = scratch(
        **{"seq/x.sms.txt": "{{ contact }} {{ link(step) }} {{ ''.__class__ }} {{ x['_y'] }}"}
    )
    usage = inspect_template(renderer, "seq/x.sms.txt")
    assert usage.whole_contact
    assert usage.dynamic_destinations == 1
    assert usage.private_attributes == {"__class__", "_y"}


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"seq/x.sms.txt": "{% if %}"}, "line 1"),
        ({"seq/x.sms.txt": '{% include "layouts/none.txt" %}'}, "not found"),
        ({"seq/x.sms.txt": "{% extends step %}"}, "computed name"),
    ],
)
def test_unparsable_or_missing_pieces_are_errors(
    scratch: Callable[..., TemplateRenderer], files: dict[str, str], message: str
) -> None:
    with pytest.raises(TemplateRenderError, match=message):
        inspect_template(scratch(**files), "seq/x.sms.txt")


@pytest.mark.parametrize(
    "name", ["diagnosis", "painLevel", "disc_issue", "medications", "MRIResult", "back-pain"]
)
def test_health_field_names_are_recognised(name: str) -> None:
    assert looks_like_health_field(name)


@pytest.mark.parametrize("name", ["discount", "referral_source", "preferred_location", "city"])
def test_ordinary_field_names_are_not(name: str) -> None:
    assert not looks_like_health_field(name)
