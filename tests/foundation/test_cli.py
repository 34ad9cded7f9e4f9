"""The command line: usage errors and our own errors are one message and a meaningful exit code."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from core.settings import REPO_ROOT
from nurture.cli.common import setup_logging
from nurture.cli.main import main


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str):
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(sys, "argv", ["nurture", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    out, err = capsys.readouterr()
    return exited.value.code, out + err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("bogus",), "No such command 'bogus'"),
        (("campaigns", "launch"), "Missing argument 'name'"),
        (("contacts", "import", "x.csv", "--no-such-option"), "No such option"),
    ],
)
def test_usage_errors_exit_2_with_clicks_message_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args, message: str
) -> None:
    code, output = run(monkeypatch, capsys, *args)
    assert code == 2
    assert message in output
    assert "Traceback" not in output


def test_our_errors_are_one_line_with_their_exit_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    monkeypatch.setenv("NURTURE_DATABASE__URL", f"sqlite:///{tmp_path / 'cli.db'}")
    code, output = run(
        monkeypatch, capsys, "contacts", "import", str(tmp_path / "none.csv"), "--source", "x"
    )
    assert code == 66  # EX_NOINPUT
    assert output.strip().startswith("error:") and "Traceback" not in output


def test_help_exits_0(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, output = run(monkeypatch, capsys, "--help")
    assert code == 0 and "campaigns" in output


def test_cli_logging_masks_addresses(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging()
    try:
        logging.getLogger("nurture.test").info("sent to maria.lopez@example.com and +13105550102")
        err = capsys.readouterr().err
        assert "maria.lopez@example.com" not in err and "+13105550102" not in err
        assert "m***@example.com" in err and "0102" in err
    finally:
        logging.getLogger().handlers.clear()


def test_starting_the_cli_loads_no_command_only_package() -> None:
    """`nurture worker` holds only what the worker runs: the web server, the importer's phone and
    email checks and the staff password hasher are loaded by the commands that use them."""
    probe = (
        "import sys\n"
        "import nurture.cli.main\n"
        "loaded = set(sys.modules) | {name.split('.')[0] for name in sys.modules}\n"
        "print(sorted(loaded & {'uvicorn', 'fastapi', 'starlette', 'web.app', "
        "'staff.accounts', 'phonenumbers', 'email_validator', 'argon2', 'watchfiles', "
        "'click'}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
