"""The content commands as a person runs them: exit codes, stdout and stderr."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.settings import REPO_ROOT
from nurture.cli.main import main

Nurture = Callable[..., "Run"]

BROKEN = """
name = "broken"
title = "Broken"
template_folder = "spasm-relief"
[[steps]]
name = "text"
channel = "sms"
template = "02-cycle"
window = { start = "07:00", end = "20:00" }
[[steps]]
name = "mail"
channel = "email"
template = "99-missing"
"""


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def nurture_process(*args: str, env: dict[str, str] | None = None) -> Run:
    """A real process, as a person runs it."""
    done = subprocess.run(
        [sys.executable, "-m", "nurture.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def nurture(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Run]:
    """The same entry point in this process (quicker): argv in, exit code and output out."""

    def run(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> Run:
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("COLUMNS", "200")
        monkeypatch.setattr(sys, "argv", ["nurture", *args])
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return Run(code, out, err)

    return run


def test_validate_every_sequence(nurture: Nurture) -> None:
    result = nurture("campaigns", "validate")
    assert result.returncode == 0, result.stderr
    assert "✓ spasm-relief: valid" in result.stdout and "✓ demo: valid" in result.stdout


def test_validate_and_launch_refuse_with_the_same_lines(nurture: Nurture, tmp_path: Path) -> None:
    definition = tmp_path / "broken.toml"
    definition.write_text(BROKEN)
    validated = nurture("campaigns", "validate", str(definition))
    assert validated.returncode == 65
    lines = [line for line in validated.stderr.splitlines() if line.startswith("✗")]
    assert any("TCPA" in line for line in lines)
    assert any("unknown template spasm-relief/99-missing" in line for line in lines)

    env = {"NURTURE_DATABASE__URL": f"sqlite:///{tmp_path / 'n.db'}"}
    launched = nurture_process("campaigns", "launch", str(definition), env=env)
    assert launched.returncode == 65
    assert [line for line in launched.stderr.splitlines() if line.startswith("✗")] == lines


def test_sms_info_for_one_text(nurture: Nurture) -> None:
    result = nurture("sms-info", "Price: 5€ [promo]")
    assert result.returncode == 0
    assert json.loads(result.stdout) == {"encoding": "GSM-7", "segments": 1}

    result = nurture("sms-info", "It\u2019s here")
    assert json.loads(result.stdout) == {"encoding": "UCS-2", "segments": 1}
    assert "U+2019" in result.stderr  # the character that forced UCS-2, named


def test_sms_info_ndjson(nurture: Nurture) -> None:
    texts = ["hi", "a" * 161, "😀" * 36, "€" * 81]
    stdin = "".join(json.dumps(text) + "\n" for text in texts)
    result = nurture("sms-info", "--ndjson", stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"encoding": "GSM-7", "segments": 1},
        {"encoding": "GSM-7", "segments": 2},
        {"encoding": "UCS-2", "segments": 2},
        {"encoding": "GSM-7", "segments": 2},
    ]


def test_sms_info_ndjson_reports_bad_lines_in_place(nurture: Nurture) -> None:
    result = nurture("sms-info", "--ndjson", stdin='"ok"\nnot json\n42\n\n"fine"\n')
    outputs = [json.loads(line) for line in result.stdout.splitlines()]
    assert outputs[0] == {"encoding": "GSM-7", "segments": 1}
    assert "line 2" in outputs[1]["error"] and "line 3" in outputs[2]["error"]
    assert outputs[3] == {"encoding": "GSM-7", "segments": 1}
    assert result.returncode == 65


def test_sms_info_needs_text_or_ndjson(nurture: Nurture) -> None:
    assert nurture("sms-info").returncode == 65
    assert nurture("sms-info", "x", "--ndjson").returncode == 65


def test_preview_writes_the_html_file(nurture: Nurture, tmp_path: Path) -> None:
    result = nurture("campaigns", "preview", "spasm-relief", "--step", "2", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "GSM-7 · 2 segment(s)" in result.stdout and "Reply STOP to opt out." in result.stdout
    assert (tmp_path / "spasm-relief-step2.html").is_file()


def test_preview_for_an_unknown_contact(nurture: Nurture, tmp_path: Path) -> None:
    env = {"NURTURE_DATABASE__URL": f"sqlite:///{tmp_path / 'n.db'}"}
    result = nurture("campaigns", "preview", "demo", "--contact", "42", env=env)
    assert result.returncode == 66 and "no contact with id 42" in result.stderr
