"""`nurture demo` on embedded defaults: it leaves .eml files and texts in the outbox, and the
links in them work against its web server; it prints how to sign in to its dashboard; with
--keep-serving a campaign launched from the dashboard is sent; a busy port stops it before it
touches the previous demo's folder."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from email import policy
from email.parser import BytesParser
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy import func, select

from core.settings import REPO_ROOT, load_settings
from nurture.app import NurtureApp
from nurture.demo import DEMO_STAFF_EMAIL, demo_app
from staff import accounts
from storage.models import Campaign, LaunchReview, Message, MessageState

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


PASSWORD_LINE = re.compile(r"^  password: (\S+)$", re.MULTILINE)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _printed_password(stdout: str) -> str:
    found = PASSWORD_LINE.findall(stdout)
    assert len(found) == 1, stdout  # printed once
    return str(found[0])


def _sign_in(client: httpx.Client, password: str) -> httpx.Response:
    form = client.get("/admin/login")
    token = CSRF.search(form.text)
    assert token, form.text
    return client.post(
        "/admin/login",
        data={
            "email": DEMO_STAFF_EMAIL,
            "password": password,
            "next": "/admin/",
            "csrf_token": token.group(1),
        },
    )


def _demo_command(folder: Path, port: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "nurture.cli.main",
        "demo",
        "--folder",
        str(folder),
        "--port",
        str(port),
        *extra,
    ]


def test_demo_runs_end_to_end_and_keep_serving_sends_a_dashboard_launch(tmp_path: Path) -> None:
    """One demo run (the demo takes about twenty seconds) checks both: what a run leaves (its
    .eml files and texts, a working link, how to sign in, the password in no file), then, with
    --keep-serving, the issue's trial: after the demo, launch another campaign from its dashboard;
    before, the scheduler had stopped and the launch only enrolled."""
    folder, port, log = tmp_path / "demo", _free_port(), tmp_path / "stderr.txt"
    demo = subprocess.Popen(
        _demo_command(folder, port, "--keep-serving"),
        stdout=subprocess.PIPE,
        stderr=log.open("w"),  # a file: a pipe nobody reads could fill and stall the demo
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        assert demo.stdout is not None
        lines: list[str] = []
        while not any("Ctrl-C stops" in line for line in lines):
            line = demo.stdout.readline()
            assert line, "".join(lines) + log.read_text()
            lines.append(line)
        stdout = "".join(lines)
        assert "Done" in stdout
        _assert_the_outbox(folder, port)
        link = re.search(rf"http://127\.0\.0\.1:{port}(/l/\S+)", stdout)
        assert link, stdout
        # Its dashboard can be signed in to with what it printed.
        password = _printed_password(stdout)
        assert f"sign in as {DEMO_STAFF_EMAIL}" in stdout
        assert f"http://127.0.0.1:{port}/admin/" in stdout
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as browser:
            response = browser.get(link.group(1))
            assert response.status_code == 302
            assert response.headers["location"].startswith(
                "https://spinaldecompressionla.com/book?"
            )
            assert _sign_in(browser, password + "x").status_code != 303
            signed_in = _sign_in(browser, password)
            assert signed_in.status_code == 303, signed_in.text
            page = browser.get("/admin/campaigns/spasm-relief")
            token = CSRF.search(page.text)
            assert token, page.text
            launched = browser.post(
                "/admin/campaigns/spasm-relief/launch",
                data={"csrf_token": token.group(1), "starts_at": ""},
            )
            assert launched.status_code == 303, launched.text
            assert "scheduler running" in browser.get("/admin/campaigns").text
        sent = _wait_for_sent(folder, "spasm-relief", at_least=3, seconds=60)
        assert sent >= 3
    finally:
        demo.send_signal(signal.SIGINT)
        out, _ = demo.communicate(timeout=60)
    assert demo.returncode == 0, out + log.read_text()
    # The password is in no file (its log included), only on the console.
    for path in [folder.parent, *folder.parent.rglob("*")]:
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path


def _assert_the_outbox(folder: Path, port: int) -> None:
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


def test_the_readme_demo_ends_by_itself_with_its_messages_sent(tmp_path: Path) -> None:
    """`nurture demo` as the README runs it, without --keep-serving: it exits 0 once the
    sequence is done, and leaves every message in the outbox."""
    folder, port = tmp_path / "demo", _free_port()
    result = subprocess.run(
        _demo_command(folder, port), capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Done" in result.stdout
    _assert_the_outbox(folder, port)
    # Launched through the one launch rule: its owner's launch approved the stored version.
    app = NurtureApp(settings=load_settings(database={"url": f"sqlite:///{folder / 'nurture.db'}"}))
    with app.sessions() as session:
        reviews = session.execute(
            select(LaunchReview.sequence, LaunchReview.decision, LaunchReview.decided_by)
        ).all()
    app.dispose()
    assert [tuple(row) for row in reviews] == [("demo", "approved", DEMO_STAFF_EMAIL)]


def _wait_for_sent(folder: Path, campaign: str, *, at_least: int, seconds: float) -> int:
    app = NurtureApp(settings=load_settings(database={"url": f"sqlite:///{folder / 'nurture.db'}"}))
    deadline, sent = time.monotonic() + seconds, 0
    try:
        while sent < at_least and time.monotonic() < deadline:
            time.sleep(0.5)
            with app.sessions() as session:
                sent = (
                    session.scalar(
                        select(func.count())
                        .select_from(Message)
                        .join(Campaign, Campaign.id == Message.campaign_id)
                        .where(Campaign.name == campaign, Message.state == MessageState.SENT)
                    )
                    or 0
                )
    finally:
        app.dispose()
    return sent


def test_a_busy_port_stops_the_demo_before_it_touches_the_previous_one(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    folder.mkdir()
    database = folder / "nurture.db"
    database.write_bytes(b"the first demo's database")
    before = sorted(path.name for path in folder.iterdir())
    with socket.create_server(("127.0.0.1", 0)) as first_demo:
        port = first_demo.getsockname()[1]
        result = subprocess.run(
            _demo_command(folder, port),
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "COLUMNS": "80"},
        )
    assert result.returncode == 69, result.stdout + result.stderr  # EX_UNAVAILABLE
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "in use" in lines[0] and str(port) in lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout.strip() == ""  # nothing imported, launched or served
    assert database.read_bytes() == b"the first demo's database"
    assert sorted(path.name for path in folder.iterdir()) == before


def _users_add(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NURTURE_STAFF_PASSWORD": "a long enough password", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "nurture.cli.main", "users", "add", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**env, "PYTHONPATH": str(REPO_ROOT)},
    )


def test_users_add_demo_writes_to_the_demos_database(tmp_path: Path) -> None:
    missing = _users_add("staff@clinic.test", "--role", "editor", "--demo", cwd=tmp_path)
    assert missing.returncode == 66, missing.stdout + missing.stderr  # EX_NOINPUT
    assert missing.stderr.strip().count("\n") == 0 and "nurture demo" in missing.stderr

    demo = demo_app(tmp_path / "var" / "demo", "127.0.0.1", 8000)
    demo.migrate()
    added = _users_add("staff@clinic.test", "--role", "editor", "--demo", cwd=tmp_path)
    assert added.returncode == 0, added.stdout + added.stderr
    with demo.sessions() as session:
        user = accounts.find_user(session, "staff@clinic.test")
        assert user is not None and user.role == "editor"
    demo.dispose()
    assert not (tmp_path / "var" / "nurture.db").exists()  # not the default database
