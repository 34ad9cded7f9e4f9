"""Engine fixtures: seeded campaigns with due messages, and apps wired to the loopback fake
providers through the real SendGrid and Twilio channels."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from campaigns.definitions import Sequence
from core.clock import FrozenClock
from core.settings import load_settings
from nurture.app import NurtureApp
from providers.fakeserver import FakeProviders, RunningFake
from storage.db import transaction
from storage.models import (
    Campaign,
    CampaignState,
    ConsentStatus,
    Contact,
    Enrollment,
    Message,
    MessageState,
)

FAKE_SID = "AC" + "a" * 32


def sequence(name: str, channel: str, **step: Any) -> Sequence:
    template = "01-welcome" if channel == "email" else "02-cycle"
    return Sequence.model_validate(
        {
            "name": name,
            "title": name,
            "template_folder": "spasm-relief",
            "audience": {"enroll_new_contacts": False},
            "steps": [{"name": "only", "channel": channel, "template": template, **step}],
        }
    )


def seed(
    app: NurtureApp,
    *,
    emails: int = 0,
    texts: int = 0,
    due: datetime,
    contacts: list[int] | None = None,
    campaign: str | None = None,
    timezone: str = "America/Los_Angeles",
    **step: Any,
) -> list[int]:
    """One campaign per channel with a due message for each contact; returns the message ids.

    New contacts (opted in to both channels) unless `contacts` names existing ones.
    """
    ids: list[int] = []
    with transaction(app.sessions) as session:
        for channel, count in (("email", emails), ("sms", texts)):
            if not count:
                continue
            name = campaign or f"engine-{channel}"
            row = session.scalar(select(Campaign).where(Campaign.name == name))
            if row is None:
                row = Campaign(
                    name=name,
                    definition=sequence(name, channel, **step).snapshot(),
                    state=CampaignState.ACTIVE,
                    starts_at=due,
                    launched_at=due,
                )
                session.add(row)
                session.flush()
            people = contacts or _contacts(session, count, timezone)
            enrollments = [Enrollment(campaign_id=row.id, contact_id=c) for c in people[:count]]
            session.add_all(enrollments)
            session.flush()
            messages = [
                Message(
                    enrollment_id=enrollment.id,
                    campaign_id=row.id,
                    contact_id=enrollment.contact_id,
                    step_index=0,
                    channel=channel,
                    due_at=due,
                    not_after=due + timedelta(hours=48),
                )
                for enrollment in enrollments
            ]
            session.add_all(messages)
            session.flush()
            for enrollment in enrollments:
                enrollment.planned_step = 0
            ids.extend(message.id for message in messages)
    return ids


def _contacts(session: Any, count: int, timezone: str) -> list[int]:
    start = session.scalar(select(func.coalesce(func.max(Contact.id), 0)))
    rows = [
        Contact(
            first_name="Pat",
            last_name=f"T{start + n}",
            email=f"pat{start + n}@example.com",
            phone=f"+1310555{start + n:04d}",
            timezone=timezone,
            email_consent=ConsentStatus.OPTED_IN,
            sms_consent=ConsentStatus.OPTED_IN,
        )
        for n in range(1, count + 1)
    ]
    session.add_all(rows)
    session.flush()
    return [row.id for row in rows]


def states(app: NurtureApp) -> dict[int, str]:
    with transaction(app.sessions, immediate=False) as session:
        return dict(session.execute(select(Message.id, Message.state)).all())  # type: ignore[arg-type]


def message_rows(app: NurtureApp) -> dict[int, Message]:
    with transaction(app.sessions, immediate=False) as session:
        return {m.id: m for m in session.scalars(select(Message))}


@pytest.fixture
def fake() -> Iterator[RunningFake]:
    with RunningFake(FakeProviders()) as running:
        yield running


def provider_sections(url: str, tmp_path: Path, **overrides: dict[str, Any]) -> dict[str, Any]:
    sections: dict[str, dict[str, Any]] = {
        "database": {"url": url},
        "outbox": {"dir": str(tmp_path / "outbox")},
        "email": {"provider": "sendgrid"},
        "sms": {"provider": "twilio", "segments_per_second": 10_000.0},
        "sendgrid": {"api_host": "", "emails_per_second": 10_000.0, "concurrency": 8},
        "twilio": {"api_base_url": "", "concurrency": 8},
        "scheduler": {"tick_seconds": 1, "retry_base_seconds": 0, "batch_size": 100},
    }
    for section, values in overrides.items():
        sections.setdefault(section, {}).update(values)
    return sections


@pytest.fixture
def provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.test-key")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", FAKE_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "test-token")


def _builder(url: str, tmp_path: Path, clock: Any, fake: RunningFake) -> Any:
    made: list[NurtureApp] = []

    def build(clock: Any = clock, **overrides: dict[str, Any]) -> NurtureApp:
        sections = provider_sections(url, tmp_path, **overrides)
        if not sections["sendgrid"]["api_host"]:
            sections["sendgrid"]["api_host"] = fake.url
        if not sections["twilio"]["api_base_url"]:
            sections["twilio"]["api_base_url"] = fake.url
        app = NurtureApp(settings=load_settings(**sections), clock=clock)
        app.migrate()
        made.append(app)
        return app

    def close() -> None:
        for app in made:
            if "dispatcher" in app.__dict__:
                app.dispatcher.shutdown()
            app.dispose()

    return build, close


@pytest.fixture
def provider_app(
    provider_env: None, db_url: str, tmp_path: Path, frozen_clock: FrozenClock, fake: RunningFake
) -> Iterator[Callable[..., NurtureApp]]:
    """Build apps (SQLite and PostgreSQL) whose real SendGrid and Twilio channels post to the
    loopback fake."""
    build, close = _builder(db_url, tmp_path, frozen_clock, fake)
    yield build
    close()


@pytest.fixture
def pg_provider_app(
    provider_env: None,
    postgres_url: str,
    tmp_path: Path,
    frozen_clock: FrozenClock,
    fake: RunningFake,
) -> Iterator[Callable[..., NurtureApp]]:
    """The same on PostgreSQL only (several workers need a real server)."""
    build, close = _builder(postgres_url, tmp_path, frozen_clock, fake)
    yield build
    close()


SETTLED = {MessageState.SENT, MessageState.SKIPPED, MessageState.FAILED, MessageState.UNCERTAIN}


class Engine:
    """Helpers handed to tests as a fixture (importlib mode: test files cannot import conftest)."""

    seed = staticmethod(seed)
    states = staticmethod(states)
    message_rows = staticmethod(message_rows)
    provider_sections = staticmethod(provider_sections)
    sequence = staticmethod(sequence)


@pytest.fixture
def h() -> type[Engine]:
    return Engine
