"""`nurture contacts purge-signups`: the daily purge of unconfirmed sign-ups, from the CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from nurture.cli.main import main


def test_purge_signups_runs_and_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NURTURE_DATABASE__URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("COLUMNS", "200")  # read while printing (see tests/contacts/test_cli.py)
    for args in (["db", "upgrade"], ["contacts", "purge-signups"]):
        monkeypatch.setattr(sys, "argv", ["nurture", *args])
        try:
            main()
        except SystemExit as exc:
            assert not exc.code, capsys.readouterr()
    out = capsys.readouterr().out
    assert "0 unconfirmed sign-up contact(s) older than 7 days removed." in out
