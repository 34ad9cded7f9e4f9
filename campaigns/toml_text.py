"""A sequence definition's data written out as TOML, for a version saved from data (the browser
editor) rather than from a file: the standard library reads TOML but does not write it.

Enough of TOML for what a definition holds: tables, arrays of tables, strings, numbers, booleans,
arrays, inline tables. `tomllib.loads(dump_toml(data)) == data` for such data (tested). A None
is left out: TOML has no null, and an absent key is the default.
"""

from __future__ import annotations

import json
import re
from typing import Any

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def dump_toml(data: dict[str, Any]) -> str:
    lines: list[str] = []
    _table(data, [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _table(data: dict[str, Any], path: list[str], lines: list[str]) -> None:
    nested: list[tuple[str, Any]] = []
    for key, value in data.items():
        if value is None:
            continue  # TOML has no null: an absent key is the default
        if isinstance(value, dict) or _is_table_array(value):
            nested.append((key, value))
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in nested:
        if isinstance(value, dict):
            lines += ["", f"[{'.'.join(_key(k) for k in [*path, key])}]"]
            _table(value, [*path, key], lines)
        else:
            for item in value:
                lines += ["", f"[[{'.'.join(_key(k) for k in [*path, key])}]]"]
                _inline_members(item, lines)


def _inline_members(item: dict[str, Any], lines: list[str]) -> None:
    """A member of an array of tables: its nested tables inline (a step's `window`)."""
    for key, value in item.items():
        if value is not None:
            lines.append(f"{_key(key)} = {_value(value)}")


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, dict):
        members = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None)
        return "{ " + members + " }" if members else "{}"
    raise ValueError(f"cannot write {type(value).__name__} as TOML")
