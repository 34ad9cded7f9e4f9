"""Each template's output with tokens for its URLs, kept per value of what the template reads.

A step's messages differ by their signed URLs and by the few contact fields their templates
print (`contact.first_name`, usually). The skeleton cache (templates/skeletons.py) already
renders every part with a token in place of each URL; this memo keeps that tokenized output, so
that a message whose template would see the same values (the same first name, clinic, reason and
step) skips Jinja altogether: its URLs are worked out again, in the order the first render asked
for them, and put where the tokens are. Jinja was about 40% of the time it took to render an
email (21 of 52 µs); with the memo, the whole render takes 41 µs.

Why a hit is the render it replaces:
- the key holds every variable the template and the templates it reaches may read, except the
  URLs, each frozen with its type (`1`, `1.0` and `True` print differently); of `contact`, only
  the fields it reads by name (`contact.first_name`, `contact["x"]`), or all of it when it is
  used any other way (a loop, a filter, `contact.items()`, an assignment);
- a template that names another at render time, or calls the `random` filter, is never kept;
- the tokenized render depends on the URLs only through their tokens, which the replay checks
  are the same: each URL the first render asked for (a value, or a call of `link` with the same
  arguments) must get the same token again, or the message is rendered in full.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, meta, nodes

from templates.bare_urls import URL_MAKERS, URL_VALUES, reached_trees
from templates.skeletons import Origin

CONTACT = "contact"
#: Filters whose output is not a function of their input.
UNSTEADY_FILTERS = frozenset(("random",))
MAX_ENTRIES = 1024
MAX_CHARS = 4_000_000
#: Keys seen once and not kept yet (see RenderMemo.admit).
MAX_SEEN = 4096
#: Distinct values numbered (see RenderMemo._id).
MAX_IDS = 65_536
_DICT_ATTRIBUTES = frozenset(dir(dict))
_SCALARS = frozenset((str, int, bool, type(None)))
_URLS = frozenset((*URL_VALUES, *URL_MAKERS))


@dataclass(frozen=True)
class Reads:
    """What a template's output may depend on, besides its URLs."""

    names: tuple[str, ...]  # context variables, sorted
    contact_fields: tuple[str, ...] | None  # None: the whole contact
    urls: tuple[str, ...]  # the URL values among the variables (not the makers)


@dataclass(frozen=True)
class Tokenized:
    """One render with tokens: its output, its pieces (text and tokens, alternating) and the
    URL each token stood for, in the order the render asked for them."""

    output: str
    parts: tuple[str, ...]
    origins: tuple[tuple[Origin, str], ...]


class RenderMemo:
    """A bounded LRU of (template, frozen values read) → Tokenized."""

    def __init__(
        self, env: Environment, max_entries: int = MAX_ENTRIES, max_chars: int = MAX_CHARS
    ) -> None:
        self.env = env
        self.max_entries, self.max_chars = max_entries, max_chars
        self._reads: dict[str, Reads | None] = {}
        self._entries: OrderedDict[tuple[Any, ...], Tokenized] = OrderedDict()
        self._seen: OrderedDict[tuple[Any, ...], None] = OrderedDict()
        self._ids: dict[Any, int] = {}
        self._numbers = itertools.count()
        self._chars = 0
        self._lock = threading.Lock()  # the web app renders previews from several threads

    def __len__(self) -> int:
        return len(self._entries)

    def reads(self, name: str) -> Reads | None:
        """What `name` reads (worked out once), or None: never kept. Raises TemplateError."""
        reads = self._reads.get(name, _UNKNOWN)
        if reads is _UNKNOWN:
            reads = self._reads[name] = template_reads(self.env, name)
        return reads

    def key(
        self, name: str, variables: Mapping[str, Any], frozen: dict[str, Any]
    ) -> tuple[Any, ...] | None:
        """The memo key of `name` rendered with `variables`, or None: always render it.
        `frozen` keeps the variables numbered so far for this message (its parts share them)."""
        reads = self.reads(name)
        if reads is None:
            return None
        key: list[Any] = [name]
        for variable in reads.names:
            if variable not in variables:
                return None  # undefined: the render raises its own error
            narrowed = variable == CONTACT and reads.contact_fields is not None
            slot = (variable, reads.contact_fields) if narrowed else variable
            kept = frozen.get(slot, _UNKNOWN)
            if kept is _UNKNOWN:
                value = variables[variable]
                if narrowed and type(value) is dict:
                    kept = _fields(value, reads.contact_fields)  # type: ignore[arg-type]
                else:
                    kept = _frozen(value)
                kept = frozen[slot] = None if kept is None else self._id(kept)
            if kept is None:
                return None
            key.append(kept)
        return tuple(key)

    def _id(self, frozen: Any) -> int:
        """A small number for a frozen value, so that keys hash and compare in a few steps."""
        found = self._ids.get(frozen)
        if found is None:
            with self._lock:
                if len(self._ids) >= MAX_IDS:
                    self._ids.clear()  # numbers are never reused: old keys just stop matching
                found = self._ids[frozen] = next(self._numbers)
        return found

    def get(self, key: tuple[Any, ...]) -> Tokenized | None:
        found = self._entries.get(key)
        if found is not None:
            with contextlib.suppress(KeyError):  # evicted meanwhile by another thread
                self._entries.move_to_end(key)
        return found

    def admit(self, key: tuple[Any, ...]) -> bool:
        """Whether to keep a render for `key`: from its second sighting on. A key unique to one
        message (a template that prints the last name) never pays for a kept render."""
        with self._lock:
            if key in self._seen:
                del self._seen[key]
                return True
            self._seen[key] = None
            if len(self._seen) > MAX_SEEN:
                self._seen.popitem(last=False)
            return False

    def put(self, key: tuple[Any, ...], entry: Tokenized) -> None:
        size = len(entry.output) * 2
        if size > self.max_chars:
            return
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = entry
            self._chars += size
            while len(self._entries) > self.max_entries or self._chars > self.max_chars:
                _, old = self._entries.popitem(last=False)
                self._chars -= len(old.output) * 2


_UNKNOWN: Any = object()


def template_reads(env: Environment, name: str) -> Reads | None:
    """What `name` and every template it extends, includes or imports may read; None when one
    of them is named at render time or calls an unsteady filter (never kept).

    Raises TemplateError (not found, syntax) like get_template; the caller renders in full."""
    trees = reached_trees(env, name)
    if trees is None:
        return None
    names: set[str] = set()
    fields: set[str] | None = set()
    for tree in trees:
        if any(node.name in UNSTEADY_FILTERS for node in tree.find_all(nodes.Filter)):
            return None
        names |= meta.find_undeclared_variables(tree)
        if fields is not None and not _contact_fields(tree, None, fields):
            fields = None
    kept = sorted(names - _URLS - env.globals.keys())
    urls = tuple(url for url in URL_VALUES if url in names)
    return Reads(tuple(kept), None if fields is None else tuple(sorted(fields)), urls)


def _contact_fields(node: nodes.Node, parent: nodes.Node | None, fields: set[str]) -> bool:
    """Adds the contact fields read by name under `node`; False if `contact` is used otherwise."""
    if isinstance(node, nodes.Name) and node.name == CONTACT:
        if node.ctx != "load":
            return False
        if (
            isinstance(parent, nodes.Getattr)
            and parent.node is node
            and parent.attr not in _DICT_ATTRIBUTES
        ):
            fields.add(parent.attr)
        elif (
            isinstance(parent, nodes.Getitem)
            and parent.node is node
            and isinstance(parent.arg, nodes.Const)
            and type(parent.arg.value) is str
        ):
            fields.add(parent.arg.value)
        else:
            return False
    return all(_contact_fields(child, node, fields) for child in node.iter_child_nodes())


def _fields(contact: dict[str, Any], names: tuple[str, ...]) -> tuple[Any, ...] | None:
    """The named fields of a contact, frozen; a missing one is told apart from every value."""
    frozen: list[Any] = []
    for name in names:
        if name not in contact:
            frozen.append(())
            continue
        value = _frozen(contact[name])
        if value is None:
            return None
        frozen.append((value,))
    return tuple(frozen)


def _frozen(value: Any) -> Any:
    """A hashable stand-in equal only for values that print alike, or None (not kept)."""
    kind = type(value)
    if kind in _SCALARS:
        return (kind, value)
    if kind is float:
        return (kind, repr(value))  # 0.0 == -0.0, yet they print differently
    if kind is dict:
        items: list[Any] = []
        for item in value.items():
            frozen = _frozen(item)
            if frozen is None:
                return None
            items.append(frozen)
        return (kind, tuple(items))  # in order: a loop over a dict follows its order
    if kind is list or kind is tuple:
        members = [_frozen(member) for member in value]
        return None if any(member is None for member in members) else (kind, tuple(members))
    return None
