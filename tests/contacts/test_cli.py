"""`nurture contacts ...` end to end in-process: output, one-line errors and exit codes."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from nurture.cli.main import main

CSV = (
    "first_name,last_name,email,phone,email_consent,sms_consent,sms_consent_evidence\n"
    "Maria,Lopez,maria@example.com,(310) 555-0101,yes,yes,Signed SMS form\n"
    "James,Carter,james@example.com,,yes,,\n"
    "Bad,Row,not-an-email,,,,\n"
)


def count(out: str, label: str) -> int:
    """The number on the summary table's row that starts with `label`."""
    for line in out.splitlines():
        cells = [cell.strip() for cell in re.split(r"[│|┃]", line) if cell.strip()]
        if cells and cells[0] == label:
            return int(cells[-1].replace(",", ""))
    raise AssertionError(f"no {label!r} row in:\n{out}")


@pytest.fixture
def nurture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    monkeypatch.setenv("NURTURE_DATABASE__URL", f"sqlite:///{tmp_path / 'cli.db'}")
    # The consoles read COLUMNS while they print. (Setting their `width` here would leave it
    # fixed at whatever it was before, for every later test, when monkeypatch restores it.)
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["nurture", *args])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_import_show_search_export(
    nurture: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    path = tmp_path / "signups.csv"
    path.write_text(CSV)
    code, out, _ = nurture("contacts", "import", str(path), "--source", "website-form")
    assert code == 0
    assert count(out, "inserted (new contacts)") == 2 and count(out, "rejected") == 1
    assert "signups.rejects.csv" in out

    code, out, _ = nurture("contacts", "show", "maria@example.com")
    assert code == 0 and "+13105550101" in out and "Signed SMS form" in out

    code, out, _ = nurture("contacts", "search", "carter")
    assert code == 0 and "1 contacts match" in out and "james@example.com" in out

    code, out, _ = nurture("contacts", "export", "-", "--consent", "sms")
    assert code == 0 and out.splitlines()[1].startswith("1,Maria,Lopez,maria@example.com")


def test_suppress_and_forget(nurture: Callable[..., tuple[int, str, str]], tmp_path: Path) -> None:
    path = tmp_path / "signups.csv"
    path.write_text(CSV)
    nurture("contacts", "import", str(path), "--source", "website-form")
    code, out, _ = nurture("contacts", "suppress", "310-555-0101", "--reason", "stop")
    assert code == 0 and "Suppressed sms +13105550101" in out and "contact #1" in out
    code, out, _ = nurture("contacts", "suppress", "+13105550101")
    assert code == 0 and "already suppressed" in out
    code, out, _ = nurture("contacts", "suppress", "stranger@example.com")
    assert code == 0 and "no contact yet" in out
    code, out, _ = nurture("contacts", "forget", "james@example.com", "--yes")
    assert code == 0 and "forgotten" in out
    code, _, err = nurture("contacts", "show", "james@example.com")
    assert code == 66 and "no contact james@example.com" in err


def test_errors_are_one_line_with_exit_codes(
    nurture: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code, _, err = nurture("contacts", "import", str(empty), "--source", "events")
    assert code == 65 and "the file is empty" in err and len(err.strip().splitlines()) == 1
    code, _, err = nurture("contacts", "import", str(empty), "--source", "x", "--column", "bad")
    assert code == 65 and "our_field=Their Header" in err
    code, _, err = nurture("contacts", "import", str(tmp_path / "missing.csv"), "--source", "x")
    assert code == 66 and "no file" in err
    code, _, err = nurture("contacts", "show", "12345")
    assert code == 66
    code, _, err = nurture("contacts", "suppress", "not an address")
    assert code == 65 and "invalid phone" in err
