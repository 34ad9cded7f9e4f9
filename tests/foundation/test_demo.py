"""`nurture demo` on embedded defaults: it ends by itself, leaves .eml files and texts in the
outbox, and the links in them work against the web app."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.settings import load_settings
from nurture.app import NurtureApp
from web.app import create_app

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    port = _free_port()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nurture.cli.main",
            "demo",
            "--folder",
            str(folder),
            "--port",
            str(port),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Done" in result.stdout

    emails = sorted((folder / "outbox" / "email").glob("*.eml"))
    assert len(emails) == 3
    message = BytesParser(policy=policy.default).parsebytes(emails[0].read_bytes())
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Unsubscribe"].strip().startswith(f"<http://127.0.0.1:{port}/u/")
    assert message["X-Nurture-Message-Id"].isdigit()  # custom_args, as SendGrid would carry them
    assert message.get_body(("plain",)) is not None and message.get_body(("html",)) is not None

    texts = [
        json.loads(line) for line in (folder / "outbox" / "sms.jsonl").read_text().splitlines()
    ]
    assert len(texts) == 2 and all("Reply STOP" in text["body"] for text in texts)

    link = re.search(rf"http://127\.0\.0\.1:{port}(/l/\S+)", result.stdout)
    assert link, result.stdout
    app = NurtureApp(
        settings=load_settings(
            database={"url": f"sqlite:///{folder / 'nurture.db'}"},
            web={"public_base_url": f"http://127.0.0.1:{port}"},
        )
    )
    client = TestClient(create_app(app), follow_redirects=False)
    response = client.get(link.group(1))
    assert response.status_code == 302
    assert response.headers["location"].startswith("https://spinaldecompressionla.com/book?")
    app.dispose()
