"""Wires settings, storage, rendering, providers and the engine into one object per process."""

from __future__ import annotations

import logging
import secrets as token_source
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from campaigns.compose import Composer
from core.clock import Clock, utcnow
from core.errors import ConfigError
from core.settings import Settings, load_settings
from core.suppression_hash import SuppressionHasher
from providers.base import EmailProvider, SmsProvider
from providers.registry import email_channel, sms_channel
from scheduler.clock import EngineClock
from scheduler.dispatcher import Dispatcher
from scheduler.heartbeat import Heartbeat
from scheduler.planner import Planner
from scheduler.settle import Settler
from scheduler.webhooks import Deliverer
from storage.db import ensure_schema, make_engine, session_factory, transaction
from templates.links import LinkSigner
from templates.renderer import TemplateRenderer

if TYPE_CHECKING:
    from contacts.forget import PersonalFiles

log = logging.getLogger("nurture")


def resolve_secret_key(settings: Settings) -> str:
    """NURTURE_SECRET_KEY; on the embedded SQLite default only, a key kept beside the database."""
    if settings.secrets.secret_key:
        return settings.secrets.secret_key
    url = make_url(settings.database.url)
    if not url.drivername.startswith("sqlite") or not url.database or url.database == ":memory:":
        raise ConfigError("NURTURE_SECRET_KEY must be set (it signs every link in every message)")
    key_file = Path(url.database).parent / "secret_key"
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(token_source.token_urlsafe(48))
        key_file.chmod(0o600)
        log.info("generated a local link-signing key in %s", key_file)
    return key_file.read_text().strip()


@dataclass
class NurtureApp:
    settings: Settings = field(default_factory=load_settings)
    clock: Clock = utcnow
    email_override: EmailProvider | None = None
    sms_override: SmsProvider | None = None

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database.url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return session_factory(self.engine, self.suppression_hasher)

    def migrate(self) -> None:
        ensure_schema(self.engine, self.suppression_hasher)
        self.seed_content()

    def seed_content(self) -> int:
        """Seed an empty content store from the `[content]` folder (campaigns.content_folder);
        how many sequences were seeded. Two processes starting on an empty PostgreSQL database
        race: the loser's unique (sequence, number) fails, and the winner's seed stands."""
        from sqlalchemy.exc import IntegrityError

        from campaigns.content_folder import seed_if_empty

        try:
            with transaction(self.sessions) as session:
                return len(seed_if_empty(session, self.settings.content.folder, now=self.clock()))
        except IntegrityError:
            return 0

    @cached_property
    def secret_key(self) -> str:
        return resolve_secret_key(self.settings)

    @cached_property
    def suppression_hasher(self) -> SuppressionHasher:
        """Keys the suppression list's address hashes (a key derived from the secret key)."""
        return SuppressionHasher.from_secret(self.secret_key)

    @cached_property
    def personal_files(self) -> tuple[PersonalFiles, ...]:
        """Where personal data is written outside the database (contacts.forget erases it).

        Imported here: forgetting needs phonenumbers, which every other command starts without."""
        from contacts.import_files import ImportFiles, imports_folder
        from providers.outbox import OutboxFiles

        outbox = Path(self.settings.outbox.dir)
        return ImportFiles(imports_folder(outbox)), OutboxFiles(outbox)

    @cached_property
    def signer(self) -> LinkSigner:
        return LinkSigner(
            self.secret_key,
            self.settings.web.public_base_url,
            self.settings.web.link_ttl_days,
        )

    @cached_property
    def renderer(self) -> TemplateRenderer:
        return TemplateRenderer()

    @cached_property
    def composer(self) -> Composer:
        return Composer(self.settings, self.renderer, self.signer)

    @cached_property
    def planner(self) -> Planner:
        return Planner(self.settings, self.sessions, self.clock)

    @cached_property
    def dispatcher(self) -> Dispatcher:
        return Dispatcher(
            self.settings,
            self.sessions,
            self.composer,
            self.email_override or email_channel(self.settings),
            self.sms_override or sms_channel(self.settings),
            self.clock,
        )

    def direct_email(self) -> EmailProvider:
        """A channel for a message the web server sends itself (web.join's confirmation): its
        own connection pool on the request's event loop, closed after the send; the override in
        tests and the demo, so it lands where the engine's messages do."""
        return self.email_override or email_channel(self.settings)

    def direct_sms(self) -> SmsProvider:
        """As direct_email, for a text (a staff answer from the dashboard, a sign-up's YES)."""
        return self.sms_override or sms_channel(self.settings)

    def engine_clock(self) -> EngineClock:
        heartbeat = Heartbeat(
            self.sessions,
            self.clock,
            worker=self.dispatcher.worker,
            channels=list(self.dispatcher.channels),
            stale_seconds=self.settings.scheduler.worker_stale_seconds,
        )
        scheduler = self.settings.scheduler
        settler = Settler(self.settings, self.sessions, self.dispatcher.sms, self.clock)
        return EngineClock(
            self.planner,
            self.dispatcher,
            scheduler.tick_seconds,
            heartbeat,
            settler,
            self.purge_unconfirmed_signups,
            Deliverer(
                self.sessions,
                self.clock,
                allow_private=self.settings.webhooks.allow_private_addresses,
            ),
        )

    def purge_unconfirmed_signups(self) -> int:
        """Forget the sign-ups nobody confirmed within signup.unconfirmed_days (contacts.signup):
        hourly on every worker's clock, and by `nurture contacts purge-signups`."""
        from contacts.signup import purge_unconfirmed

        with transaction(self.sessions) as session:
            return purge_unconfirmed(
                session, now=self.clock(), days=self.settings.signup.unconfirmed_days
            )

    def dispose(self) -> None:
        if "dispatcher" in self.__dict__:
            self.dispatcher.close()  # its send loop thread and provider connection pools
        if "engine" in self.__dict__:
            self.engine.dispose()
