"""Shared fixtures: a clean environment, SQLite and PostgreSQL databases, a frozen clock, an app
wired with in-memory channels. PostgreSQL tests skip locally when no server answers, but fail
under CI (CI=true), where the server must be there."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from core.clock import FrozenClock
from core.settings import REPO_ROOT, load_settings
from nurture.app import NurtureApp
from providers.memory import MemoryChannel

PG_ADMIN = os.environ.get("NURTURE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
# One template per pytest process, so parallel runs on one server never clobber each other.
PG_TEMPLATE = f"nurture_test_template_{os.getpid()}"
TEST_SECRET = "test-secret-key-0123456789abcdef"
SHARED = REPO_ROOT.parent / "shared"
MOCK_PROVIDERS = SHARED / "providers" / "mock-providers"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see a developer's NURTURE_* or provider variables."""
    for name in list(os.environ):
        if name.startswith(("NURTURE_", "SENDGRID_", "TWILIO_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NURTURE_SETTINGS_FILE", str(REPO_ROOT / "settings.toml"))
    monkeypatch.setenv("NURTURE_SECRET_KEY", TEST_SECRET)
    # Most tests launch campaigns without an owner's review; tests of the review rule turn it
    # back on (campaigns.review, tests/campaigns/test_review.py).
    monkeypatch.setenv("NURTURE_REVIEW__EDITORS_MAY_LAUNCH", "true")
    # Webhook tests post to a receiver on 127.0.0.1 over http (tests/scheduler/webhook_receiver);
    # tests of the refusal of such addresses turn it back off (tests/scheduler/test_webhooks.py).
    monkeypatch.setenv("NURTURE_WEBHOOKS__ALLOW_PRIVATE_ADDRESSES", "true")


@pytest.fixture(autouse=True)
def keep_the_umask() -> Iterator[None]:
    """The CLI sets the process umask to 0o077 (nurture.cli.main); a test that runs it in this
    process leaves the next test the umask it found."""
    before = os.umask(0o022)
    os.umask(before)
    yield
    os.umask(before)


def _pg_connect(dbname: str = "postgres") -> psycopg.Connection[Any]:
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + dbname
    return psycopg.connect(url, autocommit=True, connect_timeout=3)


def _postgres_or_skip() -> None:
    try:
        _pg_connect().close()
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL must answer on {PG_ADMIN} under CI: {exc}")
        pytest.skip(f"no PostgreSQL on {PG_ADMIN}: {exc}")


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database; each test copies it (CREATE DATABASE ... TEMPLATE)."""
    _postgres_or_skip()
    from storage.db import upgrade

    with _pg_connect() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {PG_TEMPLATE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {PG_TEMPLATE}")
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    upgrade(f"{base}/{PG_TEMPLATE}")
    from sqlalchemy import create_engine

    create_engine(f"{base}/{PG_TEMPLATE}").dispose()
    yield PG_TEMPLATE
    drop_pg_database(PG_TEMPLATE)


def make_pg_database(template: str) -> tuple[str, str]:
    name = f"nurture_t_{uuid.uuid4().hex[:12]}"
    with _pg_connect() as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    return name, f"{base}/{name}"


def drop_pg_database(name: str) -> None:
    with _pg_connect() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def mock_provider_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The Prism mocks of SendGrid, api.twilio.com and messaging.twilio.com (official OpenAPI
    specs; stateless), started once per session from ../shared/providers/mock-providers for the
    contract tests and `nurture doctor`'s: SENDGRID_MOCK_URL, TWILIO_MOCK_URL,
    TWILIO_MESSAGING_MOCK_URL. Skips (only the tests that use it) without shared/."""
    if not MOCK_PROVIDERS.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{MOCK_PROVIDERS} must exist under CI (the contract tests need it)")
        pytest.skip(f"provider mocks not found at {MOCK_PROVIDERS} (a clone without ../shared)")
    state = tmp_path_factory.mktemp("provider-mocks")
    started = subprocess.run(
        ["bash", str(MOCK_PROVIDERS), "start", str(state)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if started.returncode != 0:
        pytest.fail(f"mock-providers start failed: {started.stderr[-2000:]}")
    urls = dict(line.split("=", 1) for line in started.stdout.splitlines() if "_MOCK_URL=" in line)
    try:
        yield urls
    finally:
        subprocess.run(
            ["bash", str(MOCK_PROVIDERS), "stop", str(state)], capture_output=True, timeout=60
        )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Runs the test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'nurture.db'}"
        return
    template = request.getfixturevalue("pg_template")
    name, url = make_pg_database(template)
    try:
        yield url
    finally:
        drop_pg_database(name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'nurture.db'}"


@pytest.fixture
def postgres_url(pg_template: str) -> Iterator[str]:
    name, url = make_pg_database(pg_template)
    try:
        yield url
    finally:
        drop_pg_database(name)


@pytest.fixture(autouse=True)
def quick_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2id parameters in tests only: the production cost is the point in production,
    and dozens of sign-ins at that cost would make the suite slow."""
    from argon2 import PasswordHasher

    from staff import accounts

    monkeypatch.setattr(accounts, "hasher", PasswordHasher(time_cost=1, memory_cost=1024))


@pytest.fixture
def frozen_clock() -> FrozenClock:
    """Tuesday 2026-12-01 18:00 UTC = 10:00 in Los Angeles: inside every window."""
    return FrozenClock(datetime(2026, 12, 1, 18, 0, tzinfo=UTC))


@pytest.fixture
def channel() -> MemoryChannel:
    return MemoryChannel()


def build_app(
    url: str,
    tmp_path: Path,
    clock: FrozenClock,
    channel: MemoryChannel,
    **overrides: Any,
) -> NurtureApp:
    sections: dict[str, dict[str, Any]] = {
        "database": {"url": url},
        "outbox": {"dir": str(tmp_path / "outbox")},
        "scheduler": {"tick_seconds": 1},
    }
    for section, values in overrides.items():
        sections.setdefault(section, {}).update(values)
    settings = load_settings(**sections)
    database = _new_sqlite_file(url)
    if database is not None and settings.content.folder is None:
        # The same database app.migrate() would make (schema at head, the repository's content
        # seeded at this clock's time), copied from one made once per session; migrate() below
        # still runs and finds nothing to do.
        shutil.copyfile(_migrated_sqlite(clock()), database)
    app = NurtureApp(settings=settings, clock=clock, email_override=channel, sms_override=channel)
    app.migrate()
    return app


_MIGRATED_SQLITE: dict[datetime, Path] = {}


def _new_sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL whose database does not exist yet; None for anything else."""
    if not url.startswith("sqlite:///") or "?" in url:
        return None
    path = Path(url.removeprefix("sqlite:///"))
    return None if path.exists() or not path.parent.is_dir() else path


def _migrated_sqlite(now: datetime) -> Path:
    """A SQLite database migrated and seeded by the app at `now`, made once per session."""
    if now not in _MIGRATED_SQLITE:
        folder = Path(tempfile.mkdtemp(prefix="nurture-migrated-"))
        atexit.register(shutil.rmtree, folder, True)
        made = folder / "nurture.db"
        app = NurtureApp(
            settings=load_settings(
                database={"url": f"sqlite:///{made}"}, outbox={"dir": str(folder / "outbox")}
            ),
            clock=FrozenClock(now),
        )
        app.migrate()
        app.dispose()
        assert not Path(f"{made}-wal").exists()  # everything is in the one file
        _MIGRATED_SQLITE[now] = made
    return _MIGRATED_SQLITE[now]


@pytest.fixture
def nurture_app(
    db_url: str, tmp_path: Path, frozen_clock: FrozenClock, channel: MemoryChannel
) -> Iterator[NurtureApp]:
    """A migrated app on SQLite and PostgreSQL, with a frozen clock and an in-memory channel."""
    app = build_app(db_url, tmp_path, frozen_clock, channel)
    yield app
    app.dispose()


@pytest.fixture
def sqlite_app(
    sqlite_url: str, tmp_path: Path, frozen_clock: FrozenClock, channel: MemoryChannel
) -> Iterator[NurtureApp]:
    app = build_app(sqlite_url, tmp_path, frozen_clock, channel)
    yield app
    app.dispose()


@pytest.fixture
def make_contact(nurture_app: NurtureApp) -> Any:
    """Create an opted-in contact: make_contact(email=..., phone=..., sms=True, tags=[...])."""
    from contacts.consent import record_consent
    from storage.db import transaction
    from storage.models import ConsentStatus, Contact

    counter = iter(range(1, 10_000))

    def make(
        *,
        email: str | None = "",
        phone: str | None = None,
        sms: bool = False,
        email_consent: bool = True,
        tags: tuple[str, ...] = (),
        timezone: str = "America/Los_Angeles",
        first_name: str = "Pat",
    ) -> int:
        n = next(counter)
        with transaction(nurture_app.sessions) as session:
            contact = Contact(
                first_name=first_name,
                last_name=f"Tester{n}",
                email=(email if email != "" else f"pat{n}@example.com"),
                phone=phone,
                timezone=timezone,
            )
            session.add(contact)
            session.flush()
            contact.add_tags(list(tags))
            if email_consent and contact.email:
                record_consent(
                    session,
                    contact.id,
                    "email",
                    ConsentStatus.OPTED_IN,
                    source="test",
                    evidence="test form",
                    occurred_at=nurture_app.clock(),
                )
            if sms and contact.phone:
                record_consent(
                    session,
                    contact.id,
                    "sms",
                    ConsentStatus.OPTED_IN,
                    source="test",
                    evidence="signed SMS consent form",
                    occurred_at=nurture_app.clock(),
                )
            return contact.id

    return make
