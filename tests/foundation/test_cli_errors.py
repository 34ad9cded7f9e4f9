"""The command line: files private to their owner, and one line with a meaningful exit code for
database, filesystem and range errors (never a traceback, never a password)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.settings import REPO_ROOT
from nurture.cli.main import PRIVATE_UMASK, main


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str):
    monkeypatch.setenv("COLUMNS", "80")  # a narrow terminal: the line must still not wrap
    monkeypatch.setattr(sys, "argv", ["nurture", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    out, err = capsys.readouterr()
    return exited.value.code, out, err


def _one_line(out: str, err: str) -> str:
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(
    "url",
    ["postgresql://nobody@127.0.0.1:1/x", "postgresql://nobody:hunter2-secret@127.0.0.1:1/x"],
)
def test_an_unreachable_database_is_one_line_exit_69_without_the_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    monkeypatch.setenv("NURTURE_DATABASE__URL", url)
    code, out, err = run(monkeypatch, capsys, "campaigns", "list")
    line = _one_line(out, err)
    assert code == 69  # EX_UNAVAILABLE
    assert "cannot open the database" in line and "NURTURE_DATABASE__URL" in line
    assert "hunter2" not in out + err


def test_a_password_quoted_in_a_driver_message_is_masked() -> None:
    from nurture.cli.errors import safe_text

    text = "no route to postgresql+psycopg://clinic:hunter2@db:5432/nurture\n  (retry)"
    assert safe_text(text) == "no route to postgresql+psycopg://clinic:***@db:5432/nurture (retry)"


def test_a_sqlite_path_under_a_regular_file_is_one_line_exit_74(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("NURTURE_DATABASE__URL", f"sqlite:///{blocker / 'var' / 'nurture.db'}")
    code, out, err = run(monkeypatch, capsys, "campaigns", "list")
    line = _one_line(out, err)
    assert code == 74  # EX_IOERR
    assert str(blocker) in line


@pytest.fixture
def database_with_a_contact(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("NURTURE_DATABASE__URL", f"sqlite:///{tmp_path / 'nurture.db'}")
    contacts = tmp_path / "c.csv"
    contacts.write_text("first_name,email,email_consent\nAna,ana@example.com,yes\n")
    code, _, _ = run(monkeypatch, capsys, "contacts", "import", str(contacts), "--source", "t")
    assert code == 0


@pytest.mark.parametrize("days", ["100000000", "0", "-3", "nan"])
def test_simulate_days_out_of_bounds_is_one_line_exit_65(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    database_with_a_contact: None,
    days: str,
) -> None:
    code, out, err = run(
        monkeypatch, capsys, "campaigns", "simulate", "spasm-relief", "--days", days
    )
    line = _one_line(out, err)
    assert code == 65 and "--days must be between 0.1 and 366" in line


def test_date_arithmetic_past_the_calendar_is_one_line_exit_65(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    database_with_a_contact: None,
) -> None:
    code, out, err = run(
        monkeypatch, capsys, "campaigns", "simulate", "spasm-relief", "--days", "30",
        "--start", "9999-12-25T00:00+00:00",
    )  # fmt: skip
    line = _one_line(out, err)
    assert code == 65 and "out of range" in line


def test_a_bug_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only errors a person can act on become one line; a programming error is not hidden."""
    from nurture.cli.errors import one_line

    assert one_line(KeyError("x")) is None and one_line(ZeroDivisionError()) is None


# -- private files -----------------------------------------------------------------------------
WORKER_STEP = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from nurture.cli.main import main
    from providers.base import OutgoingEmail, OutgoingSms
    from providers.outbox import OutboxChannel

    upload, outbox = sys.argv[1], Path(sys.argv[2])
    sys.argv = ["nurture", "contacts", "import", upload, "--source", "fair"]
    try:
        main()
    except SystemExit as exited:
        assert not exited.code, exited.code
    # what the worker started by this command line then writes
    channel = OutboxChannel(outbox)
    email = OutgoingEmail(1, "ana@example.com", "c@x.test", "C", "Hi", "<p>Hi</p>", "Hi")
    asyncio.run(channel.send(email))
    asyncio.run(channel.send(OutgoingSms(2, "+13105550101", "Hi")))
    """
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_rejects_and_outbox_files_are_private(tmp_path: Path) -> None:
    var = tmp_path / "var"
    outbox = var / "outbox"
    upload = tmp_path / "signups.csv"
    upload.write_text("first_name,email\nAna,ana@example.com\nBad,not-an-email\n")
    environment = {
        **os.environ,
        "NURTURE_DATABASE__URL": f"sqlite:///{var / 'nurture.db'}",
        "NURTURE_OUTBOX__DIR": str(outbox),
    }
    result = subprocess.run(
        [sys.executable, "-c", WORKER_STEP, str(upload), str(outbox)],
        cwd=REPO_ROOT, env=environment, capture_output=True, text=True, umask=0o022, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert PRIVATE_UMASK == 0o077
    files = [var / "nurture.db", tmp_path / "signups.rejects.csv", outbox / "sms.jsonl",
             outbox / "email" / "00000001.eml"]  # fmt: skip
    files += [path for path in var.glob("nurture.db-*")]  # the WAL and its index, when present
    assert {str(path): oct(_mode(path)) for path in files} == {
        str(path): oct(0o600) for path in files
    }
    for folder in (var, outbox, outbox / "email"):
        assert _mode(folder) == 0o700, folder
