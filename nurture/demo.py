"""`nurture demo`: the whole product, end to end, on embedded defaults in about a minute.

A fresh SQLite database and outbox under var/demo, three sample contacts, the spasm-relief content
with its delays compressed (campaigns/demo.toml), the scheduler and the web server together.
Sample contacts are placed in a time zone where it is daytime now, so the real quiet-hours rule
(no text outside 8:00-21:00 local) lets the demo's text through instead of being switched off.

The port is taken first, before the previous demo's folder is deleted: a second demo started
while the first still serves stops there (one line, nurture.cli.errors) and the first keeps its
database. The demo makes an owner account (an editor who may also approve launches) with a
random password and prints it once (on the console only: no log line carries it), so its
dashboard can be signed in to; `nurture users add
--demo` adds more accounts to the same database (`demo_settings` is the one place that says
where it is). With --keep-serving the scheduler keeps ticking beside the web server, so a
campaign launched from the dashboard is planned and sent.
"""

from __future__ import annotations

import csv
import re
import secrets as token_source
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress
from sqlalchemy import func, select

from campaigns import review
from campaigns.content_store import launchable
from contacts import importer
from core.clock import utcnow
from core.csv_safety import csv_writer
from core.errors import NotFound
from core.settings import REPO_ROOT, Settings, load_settings
from nurture.app import NurtureApp
from staff.roles import Role
from storage.db import transaction
from storage.models import SETTLED_STATES, Enrollment, EnrollmentState, Message

DEMO_ZONES = (
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "Pacific/Honolulu",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Bangkok",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
    "America/Sao_Paulo",
    "Atlantic/Azores",
    "Pacific/Pago_Pago",
    "Asia/Kathmandu",
    "America/Anchorage",
)
SAMPLE_CSV = REPO_ROOT / "contacts" / "sample_contacts.csv"
#: Where `nurture demo` keeps its database and outbox unless told otherwise (--folder).
DEMO_FOLDER = Path("var/demo")
#: The demo's staff login (RFC 2606: example.com never receives mail).
DEMO_STAFF_EMAIL = "demo@example.com"
LINK = re.compile(r"https?://[^\s\"<>]+/l/[A-Za-z0-9._~-]+")


@dataclass
class DemoResult:
    outbox: Path
    emails: list[Path]
    sms_file: Path
    link: str | None
    finished: bool
    states: dict[str, int]


def daytime_zone(now: datetime) -> str:
    """A zone where it is now between 10:00 and 18:00 (well inside the 8:00-21:00 rule)."""
    for zone in DEMO_ZONES:
        if 10 <= now.astimezone(ZoneInfo(zone)).hour < 18:
            return zone
    return DEMO_ZONES[0]


def prepare_contacts(folder: Path, zone: str) -> Path:
    target = folder / "contacts.csv"
    with SAMPLE_CSV.open(newline="", encoding="utf-8") as source:
        rows = list(csv.DictReader(source))
    with target.open("w", newline="", encoding="utf-8") as out:
        writer = csv_writer(out)
        writer.writerow(rows[0])
        for row in rows:
            writer.writerow({**row, "timezone": zone}.values())
    return target


def demo_settings(folder: Path, host: str = "127.0.0.1", port: int = 8000) -> Settings:
    """The demo's settings: the one place that says which database the demo uses."""
    return load_settings(
        database={"url": f"sqlite:///{folder / 'nurture.db'}"},
        outbox={"dir": str(folder / "outbox")},
        email={"provider": "outbox"},
        sms={"provider": "outbox", "from_number": "+13105550100"},
        web={"public_base_url": f"http://{host}:{port}", "host": host, "port": port},
        scheduler={"tick_seconds": 1, "batch_size": 100},
    )


def demo_app(folder: Path, host: str, port: int) -> NurtureApp:
    return NurtureApp(settings=demo_settings(folder, host, port))


def existing_demo_app(folder: Path = DEMO_FOLDER) -> NurtureApp:
    """The database of the demo last run in `folder` (`nurture users add --demo`)."""
    database = folder / "nurture.db"
    if not database.is_file():
        raise NotFound(f"no demo database at {database}; run `nurture demo --keep-serving` first")
    nurture = NurtureApp(settings=demo_settings(folder))
    nurture.migrate()
    return nurture


def listen_on(host: str, port: int) -> socket.socket:
    """The web server's listening socket, taken before anything else happens.

    A busy port raises OSError (EADDRINUSE), which nurture.cli.errors turns into one line and
    an exit code. uvicorn is handed this very socket, so nothing can take the port between
    this check and the server's start.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)


def add_demo_editor(nurture: NurtureApp) -> str:
    """A demo owner account (it may approve and launch, campaigns.review) with a random
    password, returned to be printed once."""
    from staff import accounts  # argon2, loaded only when an account is made

    password = token_source.token_urlsafe(12)  # 16 characters, 96 random bits
    with transaction(nurture.sessions) as session:
        accounts.add_user(session, DEMO_STAFF_EMAIL, password, Role.OWNER)
    return password


def run_demo(
    console: Console,
    *,
    folder: Path,
    host: str,
    port: int,
    keep_serving: bool,
    timeout: float = 180,
) -> DemoResult:
    listening = listen_on(host, port)  # a busy port ends the demo here, before any deletion
    try:
        return _run(console, listening, folder, host, port, keep_serving, timeout)
    finally:
        listening.close()  # uvicorn closes it too; this covers a failure before it started


def _run(
    console: Console,
    listening: socket.socket,
    folder: Path,
    host: str,
    port: int,
    keep_serving: bool,
    timeout: float,
) -> DemoResult:
    from nurture.cli.serve import serve_web

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    nurture = demo_app(folder, host, port)
    nurture.migrate()
    password = add_demo_editor(nurture)
    zone = daytime_zone(utcnow())
    summary = importer.import_csv(
        nurture.sessions,
        prepare_contacts(folder, zone),
        "demo",
        default_timezone=nurture.settings.clinic.default_timezone,
    )
    console.print(f"Imported {summary.inserted} sample contacts (time zone {zone}, daytime now)")
    with transaction(nurture.sessions) as session:
        # the stored current version (seeded from the content folder on first run), pinned
        sequence, version = launchable(session, "demo")
        # Through the one launch rule (campaigns.review), as its owner would from the
        # dashboard: the owner's launch records its approval of this version.
        campaign, enrolled = review.launch(
            session,
            sequence,
            review.Reviewer(DEMO_STAFF_EMAIL, str(Role.OWNER)),
            now=nurture.clock(),
            settings=nurture.settings,
            version=version,
        )
        campaign_id = campaign.id
    console.print(
        f"Launched campaign [bold]{sequence.name}[/bold]: {enrolled} enrolled, "
        f"{len(sequence.steps)} steps"
    )

    server = serve_web(nurture, host, port)
    web_thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listening]}, name="web", daemon=True
    )
    web_thread.start()
    clock = nurture.engine_clock()
    clock.start()
    console.print(f"Web server on http://{host}:{port} ; scheduler ticking every second")
    try:
        finished = _wait_until_done(
            console, nurture, campaign_id, enrolled * len(sequence.steps), timeout
        )
        result = _collect(nurture, campaign_id, finished)
        _report(console, result)
        _sign_in(console, nurture.settings.web.public_base_url, password)
        if keep_serving:
            console.print(
                "Web server and scheduler still running, so links can be clicked and campaigns "
                "launched from the dashboard are sent; Ctrl-C stops them."
            )
            _wait_for_interrupt(web_thread)
    finally:
        clock.stop()
        server.should_exit = True
        web_thread.join(timeout=10)
        nurture.dispose()
    return result


def _wait_for_interrupt(web_thread: threading.Thread) -> None:
    try:
        while web_thread.is_alive():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass


def _sign_in(console: Console, base_url: str, password: str) -> None:
    """How to sign in to the demo's dashboard, printed once (never logged)."""
    console.print(
        f"  the dashboard: {base_url}/admin/ : sign in as {DEMO_STAFF_EMAIL} with the one-time "
        "password below (a new one each run; `nurture users add --demo` adds accounts)",
        soft_wrap=True,
        highlight=False,
    )
    console.print(f"  password: {password}", soft_wrap=True, highlight=False, markup=False)


def _wait_until_done(
    console: Console, nurture: NurtureApp, campaign_id: int, total: int, timeout: float
) -> bool:
    """Wait until every enrollment has completed or exited; False on timeout."""
    deadline = time.monotonic() + timeout
    with Progress("{task.description}", BarColumn(), MofNCompleteColumn(), console=console) as bar:
        task = bar.add_task("Messages settled", total=total)
        while True:
            with transaction(nurture.sessions) as session:
                active = session.scalar(
                    select(func.count()).where(
                        Enrollment.campaign_id == campaign_id,
                        Enrollment.state == EnrollmentState.ACTIVE,
                    )
                )
                settled = (
                    session.scalar(
                        select(func.count()).where(
                            Message.campaign_id == campaign_id,
                            Message.state.in_([str(state) for state in SETTLED_STATES]),
                        )
                    )
                    or 0
                )
            bar.update(task, completed=settled)
            if not active:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)


def _collect(nurture: NurtureApp, campaign_id: int, finished: bool) -> DemoResult:
    outbox = nurture.settings.outbox.dir
    with transaction(nurture.sessions) as session:
        rows = session.execute(
            select(Message.state, Message.skip_reason, func.count())
            .where(Message.campaign_id == campaign_id)
            .group_by(Message.state, Message.skip_reason)
        ).all()
    states = {
        f"{state}" + (f" ({reason})" if reason else ""): count for state, reason, count in rows
    }
    emails = sorted((outbox / "email").glob("*.eml"))
    link = None
    for path in emails:
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        body = message.get_body(("plain",))
        match = LINK.search(body.get_content() if body is not None else "")
        if match:
            link = match.group(0)
            break
    return DemoResult(outbox, emails, outbox / "sms.jsonl", link, finished, states)


def _report(console: Console, result: DemoResult) -> None:
    texts = (
        result.sms_file.read_text(encoding="utf-8").count("\n") if result.sms_file.exists() else 0
    )
    outcome = "[green]Done[/green]" if result.finished else "[red]Timed out[/red]"
    summary = ", ".join(f"{count} {state}" for state, count in sorted(result.states.items()))
    console.print(f"\n{outcome}: {summary}.")
    console.print(
        f"  emails (.eml with every header): {result.outbox / 'email'} ({len(result.emails)})"
    )
    console.print(f"  texts (JSON lines):              {result.sms_file} ({texts})")
    if result.link:
        console.print("  a tracked booking link to click (run `nurture demo --keep-serving`):")
        console.print(result.link, soft_wrap=True, highlight=False)
