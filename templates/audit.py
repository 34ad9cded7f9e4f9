"""Reads a template's source before anything renders it: which contact fields, variables, link
destinations and other templates it reaches, and whether a custom field looks like health data.

Rendering with sample contacts only exercises the branches those samples take; this static pass
sees every branch, so `{% if x %}{{ contact.email }}{% endif %}` is caught even when `x` is false.
The sandbox and the allow-listed context still stand behind it at send time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from jinja2 import Environment, TemplateSyntaxError, meta, nodes

from templates.renderer import TemplateRenderer, TemplateRenderError

LINK_HELPERS = ("booking_link", "link")

#: Words that mark a custom field as health information. Such a field must never reach a message:
#: an email subject or a text can be read by anyone near the recipient's screen (the clinic's rule:
#: no personal health details in a message; HIPAA's minimum-necessary spirit).
HEALTH_STEMS = (
    "diagnos",
    "symptom",
    "injur",
    "hernia",
    "sciatic",
    "spinal",
    "spine",
    "medic",
    "prescri",
    "therap",
    "health",
    "clinical",
    "surg",
    "pregnan",
    "disabil",
    "allerg",
    "insur",
    "vertebr",
    "lumbar",
    "cervical",
    "ailment",
    "illness",
    "disease",
    "treatment",
    "condition",
    "complaint",
)
HEALTH_WORDS = frozenset(
    (
        "pain",
        "disc",
        "disk",
        "discs",
        "mri",
        "xray",
        "icd",
        "cpt",
        "dx",
        "rx",
        "drug",
        "drugs",
        "patient",
        "chart",
        "ache",
        "spasm",
        "spasms",
        "sick",
        "meds",
        # Spanish: many of the clinic's readers write and read it
        "dolor",
        "dolores",
        "espasmo",
        "espasmos",
        "hernia",
    )
)
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def looks_like_health_field(name: str) -> bool:
    """True for names like `diagnosis`, `painLevel`, `disc_issue`, `medications`; not `discount`."""
    words = [word.lower() for word in _WORD.findall(name)]
    return any(word in HEALTH_WORDS or word.startswith(HEALTH_STEMS) for word in words)


@dataclass
class TemplateUsage:
    """What a template (with everything it extends, includes or imports) reaches."""

    templates: list[str] = field(default_factory=list)
    contact_fields: set[str] = field(default_factory=set)
    whole_contact: bool = False  # `contact` used other than as contact.<field>
    variables: set[str] = field(default_factory=set)  # undeclared top-level names
    destinations: set[str] = field(default_factory=set)
    dynamic_destinations: int = 0  # link(...) whose target is not a quoted name
    private_attributes: set[str] = field(default_factory=set)  # x._y, x.__class__, x['__y']


def _parse(env: Environment, renderer: TemplateRenderer, name: str) -> nodes.Template:
    source = renderer.source(name)
    try:
        return env.parse(source, name=name)
    except TemplateSyntaxError as exc:
        raise TemplateRenderError(f"{name} line {exc.lineno}: {exc.message}") from None


def _contact_uses(tree: nodes.Template) -> Iterator[str | None]:
    """Each use of `contact`: the field name for contact.x / contact['x'], else None."""
    reached: set[int] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if not isinstance(node, nodes.Getattr | nodes.Getitem):  # find_all's type is Node
            continue
        target = node.node
        if isinstance(target, nodes.Name) and target.name == "contact":
            reached.add(id(target))
            if isinstance(node, nodes.Getattr):
                yield node.attr
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                yield node.arg.value
            else:
                yield None
    for name in tree.find_all(nodes.Name):
        if name.name == "contact" and name.ctx == "load" and id(name) not in reached:
            yield None


def _link_targets(tree: nodes.Template) -> Iterator[str | None]:
    for call in tree.find_all(nodes.Call):
        if not (isinstance(call.node, nodes.Name) and call.node.name in LINK_HELPERS):
            continue
        arguments = [*call.args, *(kw.value for kw in call.kwargs)]
        if not arguments:
            yield "booking"
        elif len(arguments) == 1 and isinstance(arguments[0], nodes.Const):
            yield str(arguments[0].value)
        else:
            yield None


def _private_attributes(tree: nodes.Template) -> Iterator[str]:
    """Underscore names: the sandbox refuses them when rendered; this sees every branch."""
    for node in tree.find_all(nodes.Getattr):
        if node.attr.startswith("_"):
            yield node.attr
    for item in tree.find_all(nodes.Getitem):
        if isinstance(item.arg, nodes.Const) and str(item.arg.value).startswith("_"):
            yield str(item.arg.value)


def inspect_template(renderer: TemplateRenderer, name: str) -> TemplateUsage:
    """Walk `name` and every template it pulls in; raises TemplateRenderError if one is missing
    or does not parse."""
    env = renderer.env
    usage = TemplateUsage()
    pending, seen = [name], set()
    while pending:
        current = pending.pop(0)
        if current in seen:
            continue
        seen.add(current)
        usage.templates.append(current)
        tree = _parse(env, renderer, current)
        for referenced in meta.find_referenced_templates(tree):
            if referenced is None:
                raise TemplateRenderError(
                    f"{current}: extends/includes a template by a computed name; "
                    "write the name in quotes so it can be checked"
                )
            pending.append(referenced)
        usage.variables |= meta.find_undeclared_variables(tree)
        for used in _contact_uses(tree):
            if used is None:
                usage.whole_contact = True
            else:
                usage.contact_fields.add(used)
        usage.private_attributes.update(_private_attributes(tree))
        for target in _link_targets(tree):
            if target is None:
                usage.dynamic_destinations += 1
            else:
                usage.destinations.add(target)
    return usage
