"""Settings: TOML defaults, environment overrides, secrets only from the environment, and one
clear line naming the key for a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import load_settings
from providers.loopback import require_loopback


def test_defaults_come_from_settings_toml() -> None:
    settings = load_settings()
    assert settings.email.provider == "outbox" and settings.sms.provider == "outbox"
    assert settings.scheduler.default_timezone == "America/Los_Angeles"
    assert settings.clinic.destinations()["booking"] == settings.clinic.booking_url


def test_environment_overrides_any_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NURTURE_DATABASE__URL", "postgresql+psycopg://db/nurture")
    monkeypatch.setenv("NURTURE_SCHEDULER__TICK_SECONDS", "2.5")
    settings = load_settings()
    assert settings.database.url == "postgresql+psycopg://db/nurture"
    assert settings.scheduler.tick_seconds == 2.5


def test_bad_value_is_one_line_naming_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NURTURE_EMAIL__PROVIDER", "carrier-pigeon")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "email.provider" in message and "NURTURE_EMAIL__PROVIDER" in message
    assert "\n" not in message


@pytest.mark.parametrize("late", ["21:30", "23:00"])
def test_quiet_hours_cannot_be_looser_than_tcpa(monkeypatch: pytest.MonkeyPatch, late: str) -> None:
    monkeypatch.setenv("NURTURE_SCHEDULER__SMS_QUIET_HOURS_START", late)
    with pytest.raises(ConfigError, match="TCPA"):
        load_settings()


def test_stricter_quiet_hours_are_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NURTURE_SCHEDULER__SMS_QUIET_HOURS_START", "20:00")
    monkeypatch.setenv("NURTURE_SCHEDULER__SMS_QUIET_HOURS_END", "09:00")
    settings = load_settings()
    assert settings.scheduler.sms_quiet_hours_start.hour == 20


def test_secrets_are_never_read_from_the_settings_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = Path(load_settings.__code__.co_filename).parent.parent / "settings.toml"
    leaked = tmp_path / "settings.toml"
    leaked.write_text(
        'secret_key = "from-the-file"\nsendgrid_api_key = "SG.file"\n' + source.read_text()
    )
    monkeypatch.setenv("NURTURE_SETTINGS_FILE", str(leaked))
    monkeypatch.delenv("NURTURE_SECRET_KEY")
    secrets = load_settings().secrets
    assert secrets.secret_key == "" and secrets.sendgrid_api_key == ""
    assert "from-the-file" not in repr(secrets)


def test_missing_settings_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NURTURE_SETTINGS_FILE", "/nonexistent/settings.toml")
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings()


@pytest.mark.parametrize(
    "url", ["https://api.twilio.com", "http://10.0.0.5:4010", "http://example.com"]
)
def test_provider_test_hosts_must_be_loopback(url: str) -> None:
    with pytest.raises(ConfigError, match="loopback"):
        require_loopback(url, "twilio.api_base_url")


@pytest.mark.parametrize("url", ["http://127.0.0.1:4010", "http://localhost:9", "http://[::1]:80"])
def test_loopback_test_hosts_are_accepted(url: str) -> None:
    assert require_loopback(url, "sendgrid.api_host") == url


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(document.cookie)",
        "JavaScript://%0aalert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "file:///etc/passwd",
        "spinaldecompressionla.com/spring",
        "//spinaldecompressionla.com/spring",
        "https://",
    ],
)
def test_link_destinations_must_be_http_or_https(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("NURTURE_CLINIC__LINK_DESTINATIONS__PROMO", url)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "clinic.link_destinations.promo" in message and "http(s)" in message
    assert "\n" not in message


def test_http_and_https_link_destinations_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NURTURE_CLINIC__LINK_DESTINATIONS__PROMO", "https://example.com/spring")
    monkeypatch.setenv("NURTURE_CLINIC__LINK_DESTINATIONS__MAP", "http://maps.example.com/?q=1")
    destinations = load_settings().clinic.destinations()
    assert destinations["promo"] == "https://example.com/spring"
    assert destinations["map"] == "http://maps.example.com/?q=1"
