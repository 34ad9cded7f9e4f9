"""Which HTML templates only print the per-message URLs, so a token can stand in for each one.

The page-skeleton cache (templates/skeletons.py) renders an email's HTML with every signed URL
replaced by a token, then puts escape(url) back where each token came out. That equals rendering
with the URL only if the template does nothing with it but print it: `{{ unsubscribe_url }}` or
`{{ link('booking') }}`, autoescaped. Anything else would see or rework the token instead of the
URL and send something else: `|upper`, `[:20]`, `|truncate(20)`, `|length`, `==`, `{% if %}`,
`{% set %}`, and output captured and reworked later (macros, `{% call %}`, `{% filter %}`,
`{% set %}…{% endset %}`, `{% autoescape %}`, recursive loops, `self.block()` or `super()` given
to a filter, and a block or include placed inside one of those, since another template fills
it). Such a template always takes the plain path. Like the audit, this reads every template the
page extends, includes or imports, so it sees every branch whichever one a message takes.
"""

from __future__ import annotations

from collections.abc import Sequence

from jinja2 import Environment, meta, nodes

#: Signed strings in Composer.context: unique to each message (or contact).
URL_VALUES = ("unsubscribe_url", "preferences_url")
#: Callables in Composer.context that return a message's signed click URL for a destination.
URL_MAKERS = ("link", "booking_link")
#: Names whose result may carry a URL and so must be printed as is.
_CALLED_BARE = frozenset((*URL_MAKERS, "super"))
_WATCHED = frozenset((*URL_VALUES, *_CALLED_BARE, "self"))
#: Output that another template may supply: a block a child overrides, an included page.
_FILLED_ELSEWHERE = (nodes.Block, nodes.Include, nodes.Extends)
#: Constructs whose output a template can rework before it is printed, or print unescaped.
_CAPTURING = (
    nodes.Macro,
    nodes.CallBlock,
    nodes.FilterBlock,
    nodes.AssignBlock,
    nodes.EvalContextModifier,  # {% autoescape false %}
)


def prints_urls_bare(env: Environment, name: str, *, escaped: bool = True) -> bool:
    """True when `name` and every template it reaches print URLs only as whole values, escaped
    ones unless `escaped` is False (a text part, which prints a URL as it is).

    Raises TemplateError (not found, syntax) like get_template; the caller takes the plain path.
    """
    pending, seen = [name], set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        autoescape = env.autoescape(current) if callable(env.autoescape) else env.autoescape
        if escaped and not autoescape:
            return False
        source = env.loader.get_source(env, current)[0]  # type: ignore[union-attr]
        tree = env.parse(source, name=current)
        if not _only_bare_uses(tree, [], captured=False):
            return False
        for referenced in meta.find_referenced_templates(tree):
            if referenced is None:  # a computed name: cannot be read ahead
                return False
            pending.append(referenced)
    return True


def names_read(env: Environment, name: str) -> frozenset[str] | None:
    """Every variable `name` and the templates it extends, includes or imports may read, or
    None when one of them is named at render time (then any variable may be read)."""
    trees = reached_trees(env, name)
    if trees is None:
        return None
    return frozenset(
        variable for tree in trees for variable in meta.find_undeclared_variables(tree)
    )


def reached_trees(env: Environment, name: str) -> list[nodes.Template] | None:
    """`name` and every template it extends, includes or imports, parsed, each once; None when
    one of them is named at render time (it cannot be read ahead). Raises TemplateError."""
    pending, seen, trees = [name], set(), []
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        tree = env.parse(env.loader.get_source(env, current)[0], name=current)  # type: ignore[union-attr]
        trees.append(tree)
        for referenced in meta.find_referenced_templates(tree):
            if referenced is None:
                return None
            pending.append(referenced)
    return trees


def _only_bare_uses(node: nodes.Node, parents: list[nodes.Node], captured: bool) -> bool:
    if isinstance(node, nodes.Name) and node.name in _WATCHED:
        if captured or not _printed_as_is(node, parents):
            return False
    elif isinstance(node, _FILLED_ELSEWHERE) and captured:
        return False  # another template's output, captured here
    captured = captured or isinstance(node, _CAPTURING)
    captured = captured or (isinstance(node, nodes.For) and node.recursive)  # loop(...) output
    parents.append(node)
    try:
        return all(_only_bare_uses(child, parents, captured) for child in node.iter_child_nodes())
    finally:
        parents.pop()


def _printed_as_is(name: nodes.Name, parents: Sequence[nodes.Node]) -> bool:
    """`{{ unsubscribe_url }}`, `{{ link(...) }}`, `{{ super() }}`, `{{ self.x() }}`: each one the
    whole of an expression in an output statement (`{{ a }}{{ b }}` is one Output node)."""
    if name.ctx != "load":  # {% set link = ... %}, a loop variable, a macro argument
        return False
    chain = [name, *reversed(parents[-3:])]
    if name.name == "self":
        expected = (nodes.Getattr, nodes.Call, nodes.Output)
    elif name.name in _CALLED_BARE:
        expected = (nodes.Call, nodes.Output)
    else:
        expected = (nodes.Output,)
    if len(chain) <= len(expected):
        return False
    for child, parent, kind in zip(chain, chain[1:], expected, strict=False):
        if not isinstance(parent, kind):
            return False
        if isinstance(parent, nodes.Getattr | nodes.Call) and parent.node is not child:
            return False  # an argument, not the callee: link(unsubscribe_url)
    return True
