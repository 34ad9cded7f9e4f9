"""Suppression hashes keyed with the server's secret (HMAC-SHA256 over the old digest), and
migration 0005, which converts stored hashes in place so existing suppressions still match."""

from __future__ import annotations

import hashlib
import hmac
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from contacts.forget import forget_contact
from contacts.rows import RowRules, clean_row
from contacts.search import find_contact
from contacts.suppressions import hasher_of, is_suppressed, suppress
from core.clock import FrozenClock
from core.errors import ConfigError
from core.settings import load_settings
from core.suppression_hash import PURPOSE, SuppressionHasher
from nurture.app import NurtureApp
from providers.memory import MemoryChannel
from scheduler.checks import suppressed_among
from storage.db import current_revision, head_revision, make_engine, session_factory, upgrade
from storage.models import Suppression
from tests.conftest import build_app

SECRET = "test-secret-key-0123456789abcdef"  # tests/conftest.py's NURTURE_SECRET_KEY
PHONE = "+13105550101"


def _plain(channel: str, address: str) -> str:
    return hashlib.sha256(f"{channel}:{address}".encode()).hexdigest()


def test_the_stored_hash_is_keyed_not_the_plain_sha256(nurture_app: NurtureApp) -> None:
    with nurture_app.sessions() as session, session.begin():
        suppress(session, "sms", PHONE, "stop", at=nurture_app.clock())
        stored = session.scalar(select(Suppression.address_hash))
    assert stored != _plain("sms", PHONE)
    derived = hmac.new(SECRET.encode(), PURPOSE, hashlib.sha256).digest()
    assert derived != SECRET.encode()  # a key for this one purpose, never the secret itself
    plain = _plain("sms", PHONE).encode()
    assert stored == hmac.new(derived, plain, hashlib.sha256).hexdigest()


def test_two_installs_with_different_secrets_store_different_hashes(
    tmp_path: Path, frozen_clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = []
    for name, secret in (("a", "first-install-secret-0123456789"), ("b", "second-install-0987")):
        monkeypatch.setenv("NURTURE_SECRET_KEY", secret)
        app = build_app(f"sqlite:///{tmp_path / name}.db", tmp_path / name, frozen_clock,
                        MemoryChannel())  # fmt: skip
        with app.sessions() as session, session.begin():
            suppress(session, "sms", PHONE, "stop", at=frozen_clock())
            assert is_suppressed(session, "sms", PHONE)
            stored.append(session.scalar(select(Suppression.address_hash)))
        app.dispose()
    assert stored[0] != stored[1]


def test_a_session_without_the_key_refuses_rather_than_miss_a_suppression(
    nurture_app: NurtureApp,
) -> None:
    keyless = session_factory(nurture_app.engine)
    with keyless() as session, pytest.raises(ConfigError, match="no suppression hash key"):
        is_suppressed(session, "sms", PHONE)


def test_the_hasher_travels_to_import_workers_as_its_derived_key() -> None:
    hasher = SuppressionHasher.from_secret(SECRET)
    copy = pickle.loads(pickle.dumps(hasher))
    assert copy("email", "Ann@Example.com ") == hasher("email", "ann@example.com")
    assert SECRET not in repr(hasher) and SECRET.encode() not in pickle.dumps(hasher)
    with pytest.raises(ValueError):
        SuppressionHasher.from_secret("")


def test_import_rows_are_hashed_with_the_install_s_key(nurture_app: NurtureApp) -> None:
    from contacts.columns import plan_columns

    with nurture_app.sessions() as session:
        hasher = hasher_of(session)
    rules = RowRules(plan_columns(["email", "phone"]), "UTC", nurture_app.clock(), hasher=hasher)
    row = clean_row(pickle.loads(pickle.dumps(rules)), 2, ["ann@example.com", "(310) 555-0101"])
    assert (row.email_hash, row.phone_hash) == (
        hasher("email", "ann@example.com"),
        hasher("sms", PHONE),
    )


@pytest.fixture
def old_database(tmp_path: Path, frozen_clock: FrozenClock) -> str:
    """A database made by the release before 0005, with a suppression under the plain hash."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0004")
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            insert(Suppression),
            [{"channel": "sms", "address_hash": _plain("sms", PHONE), "address": None,
              "reason": "stop", "source": "twilio STOP", "created_at": frozen_clock()}],
        )  # fmt: skip
    engine.dispose()
    return url


def test_migration_0005_keeps_old_suppressions_matching(
    old_database: str,
    tmp_path: Path,
    frozen_clock: FrozenClock,
    write_csv: Callable[..., Path],
) -> None:
    app = build_app(old_database, tmp_path, frozen_clock, MemoryChannel())  # migrates to head
    assert current_revision(app.engine) == head_revision()
    with app.sessions() as session:
        stored = session.scalar(select(Suppression.address_hash))
        assert stored != _plain("sms", PHONE)
        assert is_suppressed(session, "sms", PHONE)
    # An import keeps the suppression (the row's hash, made on the workers, still matches it).
    from contacts.importer import import_csv

    path = write_csv("first_name,phone,sms_consent,sms_consent_evidence\n"
                     "Maria,(310) 555-0101,yes,signed form\n")  # fmt: skip
    summary = import_csv(app.sessions, path, "front-desk", default_timezone="UTC",
                         clock=app.clock)  # fmt: skip
    assert summary.suppressions_kept == 1
    # And the send-time check refuses to text her.
    with app.sessions() as session:
        maria = find_contact(session, PHONE)
        hasher = hasher_of(session)
        digest = hasher("sms", PHONE)
        assert suppressed_among(session, [digest]) == {("sms", digest)}
        # forget keeps only the keyed hash
        forget_contact(session, maria, requested_by="staff", now=frozen_clock(), files=())
        session.commit()
        rows = session.execute(select(Suppression.address, Suppression.address_hash)).all()
        assert rows == [(None, digest)]
    app.dispose()


def test_migration_0005_without_the_key_fails_with_one_line(old_database: str) -> None:
    with pytest.raises(ConfigError) as failure:
        upgrade(old_database)
    assert "NURTURE_SECRET_KEY" in str(failure.value) and "\n" not in str(failure.value)
    engine = make_engine(old_database)
    assert current_revision(engine) == "0004"  # nothing half-done
    with engine.connect() as connection:
        assert connection.scalar(select(Suppression.address_hash)) == _plain("sms", PHONE)
    engine.dispose()


def test_migration_0005_needs_no_key_for_an_empty_list(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgrade(url)
    engine = make_engine(url)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_nurture_db_upgrade_hands_the_key_to_the_migration(
    old_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from nurture.cli.main import app as cli

    monkeypatch.setenv("NURTURE_DATABASE__URL", old_database)
    result = CliRunner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    app = NurtureApp(settings=load_settings())
    with app.sessions() as session:
        assert is_suppressed(session, "sms", PHONE)
    app.dispose()
