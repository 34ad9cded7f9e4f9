"""`nurture doctor` against the Prism mocks of SendGrid and Twilio (official OpenAPI specs).

The mocks answer with the specs' examples, so the "correct" configuration is built to match
them: the API key's scopes example includes mail.send; the account example is active; the
IncomingPhoneNumbers example (+18089255327) has an empty sms_url, which would rightly fail the
inbound check, so the sender is the example messaging service (MGaaaa...), whose inbound URL
and status callback are https://www.example.com: that is the public_base_url here.
"""

from __future__ import annotations

import base64
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from rich.console import Console

from core.clock import FrozenClock
from core.settings import load_settings
from nurture.app import NurtureApp
from nurture.doctor import Check, Context, Finding, Verdict, database_now, fail, run_checks
from storage.db import make_engine

pytestmark = pytest.mark.contract

SID = "AC" + "a" * 32
SERVICE = "MG" + "a" * 32
EXAMPLE_BASE = "https://www.example.com"


@pytest.fixture(scope="module")
def mocks(mock_provider_urls: dict[str, str]) -> dict[str, str]:
    """The three mocks' URLs (SendGrid, api.twilio.com, messaging.twilio.com), started once per
    session (tests/conftest.py), shared with the contract tests."""
    return mock_provider_urls


def _webhook_key() -> str:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


@pytest.fixture
def good_env(monkeypatch: pytest.MonkeyPatch, mocks: dict[str, str]) -> dict[str, Any]:
    """Secrets in the environment and the settings sections of a correct configuration."""
    monkeypatch.setenv("NURTURE_SECRET_KEY", "s" * 40)
    monkeypatch.setenv("NURTURE_BOOKING_WEBHOOK_SECRET", "b" * 32)
    monkeypatch.setenv("NURTURE_SENDGRID_WEBHOOK_PUBLIC_KEY", _webhook_key())
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.doctor")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "t" * 32)
    # As shipped: tests/conftest.py allows private webhook addresses for the test receiver.
    monkeypatch.setenv("NURTURE_WEBHOOKS__ALLOW_PRIVATE_ADDRESSES", "false")
    return {
        "web": {"public_base_url": EXAMPLE_BASE},
        "email": {"provider": "sendgrid"},
        "sms": {"provider": "twilio", "messaging_service_sid": SERVICE},
        "sendgrid": {"api_host": mocks["SENDGRID_MOCK_URL"]},
        "twilio": {
            "api_base_url": mocks["TWILIO_MOCK_URL"],
            "messaging_base_url": mocks["TWILIO_MESSAGING_MOCK_URL"],
        },
    }


def _doctor(tmp_path: Path, sections: dict[str, Any], *, migrate: bool = True) -> list[Any]:
    url = f"sqlite:///{tmp_path / 'doctor.db'}"
    engine = make_engine(url)
    # The app's clock set from the database's own reading: the clocks agree by construction.
    clock = FrozenClock(database_now(engine))
    engine.dispose()
    app = NurtureApp(settings=load_settings(database={"url": url}, **sections), clock=clock)
    if migrate:
        app.migrate()
    try:
        return run_checks(Context(app.settings, app.engine, app.clock))
    finally:
        app.dispose()


def test_a_correct_configuration_passes_every_check(
    tmp_path: Path, good_env: dict[str, Any]
) -> None:
    findings = _doctor(tmp_path, good_env)
    assert [f for f in findings if f.verdict is not Verdict.OK] == []
    lines = "\n".join(f.line for f in findings)
    assert "scope mail.send" in lines
    assert "Twilio account is active" in lines
    assert f"messaging service {SERVICE} exists" in lines
    assert f"posts inbound texts to {EXAMPLE_BASE}" in lines
    assert "clock" in lines and "schema is current" in lines
    assert len(findings) == 10  # random_page_cost does not apply on SQLite


def test_a_broken_configuration_names_each_wrong_setting(
    tmp_path: Path, good_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NURTURE_SECRET_KEY", "short")
    monkeypatch.delenv("NURTURE_SENDGRID_WEBHOOK_PUBLIC_KEY")
    good_env["web"] = {"public_base_url": "http://nurture.example.com"}
    good_env["sendgrid"] = {"api_host": "http://127.0.0.1:1"}  # nothing listens there
    findings = _doctor(tmp_path, good_env, migrate=False)
    failed = [f.line for f in findings if f.verdict is Verdict.FAIL]
    assert any(
        line.startswith("web.public_base_url (NURTURE_WEB__PUBLIC_BASE_URL)") for line in failed
    )
    assert "NURTURE_SECRET_KEY is too short: 5 characters, at least 32" in failed
    assert any(line.startswith("NURTURE_SENDGRID_WEBHOOK_PUBLIC_KEY is not set") for line in failed)
    assert any("could not check" in line and "sendgrid.api_host" in line for line in failed)
    assert any("schema is at nothing" in line for line in failed)
    # Twilio's inbound URL (https://www.example.com/) is not under the http base any more.
    assert any("inbound URL is https://www.example.com/" in line for line in failed)
    assert len(failed) == 6


def test_a_skewed_clock_and_a_wrong_sender_fail(tmp_path: Path, good_env: dict[str, Any]) -> None:
    good_env["sms"] = {"provider": "twilio", "from_number": "+13105550100"}
    url = f"sqlite:///{tmp_path / 'doctor.db'}"
    app = NurtureApp(settings=load_settings(database={"url": url}, **good_env))
    app.migrate()
    app.clock = FrozenClock(database_now(app.engine) - timedelta(minutes=3))
    try:
        failed = [
            f.line
            for f in run_checks(Context(app.settings, app.engine, app.clock))
            if f.verdict is Verdict.FAIL
        ]
    finally:
        app.dispose()
    assert "sms.from_number +13105550100 is not a number of this Twilio account" in failed
    assert any("-180" in line and "off the database's" in line for line in failed)


def test_an_exception_becomes_one_failed_line_naming_the_settings(tmp_path: Path) -> None:
    def explodes(_: Context) -> Any:
        raise ConnectionRefusedError("refused\nsecond line")

    app = NurtureApp(settings=load_settings(database={"url": f"sqlite:///{tmp_path / 'x.db'}"}))
    findings = run_checks(Context(app.settings, app.engine, app.clock), (Check(explodes, "x.y"),))
    app.dispose()
    assert findings == [
        fail("explodes: could not check (ConnectionRefusedError: refused): look at x.y")
    ]


def test_the_command_exits_non_zero_on_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from nurture.cli import doctor as command
    from nurture.cli.main import main

    monkeypatch.setenv("NURTURE_DATABASE__URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setattr(command, "console", Console(file=io.StringIO(), width=200))
    monkeypatch.setattr("sys.argv", ["nurture", "doctor"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 1
    printed = command.console.file.getvalue()  # type: ignore[attr-defined]  # the StringIO above
    assert "✗ web.public_base_url (NURTURE_WEB__PUBLIC_BASE_URL) must be https://" in printed


@pytest.mark.postgres
def test_postgresql_page_cost_warns_at_4_not_at_ssd_and_its_clock_is_read(
    postgres_url: str,
) -> None:
    from sqlalchemy import text

    from nurture.doctor import clocks_agree, postgres_page_cost

    settings = load_settings(database={"url": postgres_url})
    engine = make_engine(postgres_url)
    try:
        clock = FrozenClock(database_now(engine))
        # This test's own database (dropped afterwards); 4 even if the server is tuned.
        with engine.begin() as connection:
            name: str = connection.execute(text("SELECT current_database()")).scalar_one()
            connection.execute(text(f"ALTER DATABASE {name} SET random_page_cost = 4"))
        engine.dispose()
        warned = postgres_page_cost(Context(settings, engine, clock))
        assert warned is not None and warned.verdict is Verdict.WARN
        assert "random_page_cost is 4" in warned.line
        with engine.begin() as connection:
            connection.execute(text(f"ALTER DATABASE {name} SET random_page_cost = 1.1"))
        engine.dispose()
        assert postgres_page_cost(Context(settings, engine, clock)) == Finding(
            Verdict.OK, "PostgreSQL random_page_cost is 1.1"
        )
        assert clocks_agree(Context(settings, engine, clock)).verdict is Verdict.OK
    finally:
        engine.dispose()


def test_without_twilio_configured_only_the_account_line_says_so(tmp_path: Path) -> None:
    """No network call and no "could not check" lines for a sender nobody configured."""
    findings = _doctor(tmp_path, {"sms": {"provider": "twilio"}})
    lines = [f.line for f in findings]
    assert "TWILIO_ACCOUNT_SID (AC + 32 hex digits) and TWILIO_AUTH_TOKEN must be set" in lines
    assert not any("Twilio number" in line or "could not check" in line for line in lines)
