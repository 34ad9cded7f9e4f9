"""Settings: documented defaults in settings.toml, overridden by NURTURE_<SECTION>__<KEY>.

Secrets are never read from the TOML file, only from the environment (see `Secrets`).
"""

from __future__ import annotations

import os
import re
from datetime import time
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from core.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
SETTINGS_FILE_ENV = "NURTURE_SETTINGS_FILE"


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {value!r}") from exc
    return value


def _clock(value: str | time) -> time:
    if isinstance(value, time):
        return value
    if not re.fullmatch(r"\d{1,2}:\d{2}", value):
        raise ValueError(f"expected HH:MM, got {value!r}")
    hours, minutes = (int(part) for part in value.split(":"))
    return time(hours % 24, minutes)


def _web_address(value: str) -> str:
    """Only http(s) URLs with a host: a link in an email must open a web page, never run a
    `javascript:` or `data:` URL or open a local `file:` (OWASP: allow-list URL schemes)."""
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        raise ValueError(f"not a URL: {value!r}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http(s) URL with a host, got {value!r}")
    return value.strip()


#: A web page address (http or https with a host), checked when settings load.
WebAddress = Annotated[str, AfterValidator(_web_address)]


def _web_origin(value: str) -> str:
    """scheme://host[:port] and nothing else: it goes into a Content-Security-Policy header,
    where a path, a space or a semicolon would change what the policy allows."""
    address = _web_address(value)
    parts = urlsplit(address)
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"must be an origin like https://example.com, got {value!r}")
    if not re.fullmatch(r"[A-Za-z0-9.:\[\]-]+", parts.netloc):
        raise ValueError(f"not a web origin: {value!r}")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


#: A web origin (https://example.com), checked when settings load.
WebOrigin = Annotated[str, AfterValidator(_web_origin)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClinicSettings(Section):
    name: str = "Spinal Decompression LA"
    website: WebAddress = "https://spinaldecompressionla.com"
    postal_address: str = Field(min_length=10)
    phone_display: str = "888-20-DECOM"
    phone_e164: str = "+18882033266"
    booking_url: WebAddress = "https://spinaldecompressionla.com/book"
    #: Tracked-link targets by name; each must be an http(s) address (see _web_address).
    link_destinations: dict[str, WebAddress] = Field(default_factory=dict)
    sms_help_text: str = ""
    default_timezone: str = "America/Los_Angeles"
    #: The TCPA disclosure beside the sign-up form's SMS box, word for word: the ledger keeps the
    #: exact text a person agreed to (prior express written consent, 47 CFR 64.1200(f)(9)).
    sms_disclosure: str = Field(
        "I agree to receive marketing texts from Spinal Decompression LA at this number, up to "
        "4 msgs/mo. Consent is not a condition of purchase. Msg & data rates may apply. Reply "
        "STOP to cancel, HELP for help.",
        min_length=40,
    )
    sms_disclosure_es: str = Field(
        "Acepto recibir mensajes de texto promocionales de Spinal Decompression LA en este "
        "número, hasta 4 msjs/mes. El consentimiento no es condición de compra. Pueden "
        "aplicarse tarifas de mensajes y datos. Responda STOP para cancelar, HELP/AYUDA para "
        "ayuda.",
        min_length=40,
    )
    privacy_url: WebAddress = "https://spinaldecompressionla.com/privacy"

    _check_zone = field_validator("default_timezone")(_zone)

    def destinations(self) -> dict[str, str]:
        """Registered tracked-link targets; `booking` always points at the booking page."""
        return {**self.link_destinations, "booking": self.booking_url}


class WebSettings(Section):
    public_base_url: WebAddress = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    trusted_proxies: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(1_048_576, ge=1024)
    max_upload_bytes: int = Field(104_857_600, ge=1024)
    link_ttl_days: int = Field(400, ge=30)

    @field_validator("public_base_url")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.rstrip("/")


class DatabaseSettings(Section):
    url: str = "sqlite:///var/nurture.db"


class OutboxSettings(Section):
    dir: Path = Path("var/outbox")


class ContentSettings(Section):
    """Where an empty database's sequences and templates come from (campaigns.content_folder):
    a folder with `campaigns/` and `templates/`; unset, the package's own (the repository's)."""

    folder: Path | None = None


class EmailSettings(Section):
    provider: Literal["outbox", "sendgrid"] = "outbox"
    from_address: str = "care@spinaldecompressionla.com"
    from_name: str = "Spinal Decompression LA"
    reply_to: str = ""
    unsubscribe_mailto: str = ""


class SmsSettings(Section):
    provider: Literal["outbox", "twilio"] = "outbox"
    from_number: str = ""
    messaging_service_sid: str = ""
    segments_per_second: float = Field(1.0, gt=0)
    #: Transliterate before sending, as Twilio's Smart Encoding does (á -> a, curly quotes ->
    #: straight ones: templates.sms_segments.smart_encode), so a Spanish text stays GSM-7.
    smart_encoding: bool = False
    #: Text-to-join: a keyword texted to the clinic's number -> the sequence it enrolls in after
    #: the sender's YES (contacts.signup); upper-case letters only, as contacts.keywords folds.
    join_keywords: dict[str, str] = Field(default_factory=dict)
    #: The language a join keyword sets on the contact (ALIVIO: "es"); others keep theirs.
    join_keyword_languages: dict[str, str] = Field(default_factory=dict)


class SignupSettings(Section):
    """The hosted sign-up form (web.join) and its double opt-in (contacts.signup)."""

    #: A form sent back sooner than this after it was served is a bot's.
    form_min_seconds: float = Field(3, ge=0)
    #: A form older than this is refused (its signed token has expired); the page reloads it.
    form_max_age_seconds: int = Field(3600, ge=60)
    #: Sign-ups per hour from one IP address, email address or phone number (in-process).
    per_address_per_hour: int = Field(5, ge=1)
    #: Unconfirmed sign-ups are purged after this many days; the confirmation link expires then.
    unconfirmed_days: int = Field(7, ge=1, le=60)
    #: Web origins that may show the form in a frame (/join?embed=1, the dashboard's snippet);
    #: empty: the origin of clinic.website. Every other page of ours refuses to be framed.
    embed_origins: list[WebOrigin] = Field(default_factory=list)


class SendGridSettings(Section):
    api_host: str = ""
    emails_per_second: float = Field(100.0, gt=0)
    concurrency: int = Field(16, ge=1, le=256)


class TwilioSettings(Section):
    api_base_url: str = ""
    #: messaging.twilio.com's loopback test URL (Messaging Services; `nurture doctor` only).
    messaging_base_url: str = ""
    concurrency: int = Field(16, ge=1, le=256)


class SchedulerSettings(Section):
    tick_seconds: float = Field(5, gt=0)
    default_timezone: str = "America/Los_Angeles"
    batch_size: int = Field(500, ge=1)
    sms_quiet_hours_start: time = time(21, 0)
    sms_quiet_hours_end: time = time(8, 0)
    max_lateness_hours: float = Field(48, gt=0)
    sms_frequency_cap_hours: float = Field(24, ge=0)
    max_attempts: int = Field(6, ge=1)
    retry_base_seconds: float = Field(30, ge=0)
    sending_timeout_seconds: float = Field(300, gt=0)
    #: An uncertain message is checked against the provider's own log within this many seconds
    #: of becoming uncertain (scheduler/settle.py: the settling step runs this often).
    settle_uncertain_after_seconds: float = Field(120, gt=0)
    #: The clocks' slack around a text's send window when Twilio's Messages list is read.
    settle_window_margin_seconds: float = Field(60, ge=0)
    #: With the SendGrid Event Webhook healthy, an email with no event this long after its send
    #: never reached SendGrid and is planned again.
    settle_email_wait_seconds: float = Field(600, gt=0)
    #: The Event Webhook counts as healthy while its last event is at most this old.
    event_webhook_healthy_within_seconds: float = Field(3600, gt=0)
    #: SendGrid and Twilio calls go through a child process, so a worker renders and records on
    #: one core while the calls run on the other (scheduler/sender_process.py).
    sender_process: bool = True
    #: Checked sub-batches wait behind the one on the wire (fastest); false: each is checked
    #: only once every call before it has begun, so an unsubscribe stops more of what is in
    #: flight, at about 25% fewer messages per second (scheduler/dispatcher.py).
    queue_checked_sub_batches: bool = True
    #: A worker whose heartbeat is older than this is not running (scheduler/heartbeat.py); it
    #: beats four times in this span, so a busy database can delay a beat or two without the
    #: dashboard crying wolf, and a killed worker shows as stopped within a minute.
    worker_stale_seconds: float = Field(45, ge=10)

    _check_zone = field_validator("default_timezone")(_zone)
    _check_clock = field_validator("sms_quiet_hours_start", "sms_quiet_hours_end", mode="before")(
        _clock
    )

    @field_validator("sms_quiet_hours_start")
    @classmethod
    def _tcpa_evening(cls, value: time) -> time:
        if value > time(21, 0) or value < time(8, 0):
            raise ValueError("texts must stop by 21:00 local (TCPA); a stricter hour is allowed")
        return value

    @field_validator("sms_quiet_hours_end")
    @classmethod
    def _tcpa_morning(cls, value: time) -> time:
        if value < time(8, 0) or value > time(21, 0):
            raise ValueError("texts may start at 08:00 local at the earliest (TCPA)")
        return value


class StatusSettings(Section):
    unreachable_codes: list[int] = Field(default_factory=lambda: [30003, 30005, 30006])
    unreachable_threshold: int = Field(2, ge=1)


class ReviewSettings(Section):
    """Review before launch (campaigns.review): owners approve a sequence's content, editors
    request review. true: an editor may also launch a sequence no owner has approved."""

    editors_may_launch: bool = False


class WebhookSettings(Section):
    """Outbound webhooks (scheduler.webhooks). Deliveries carry people's email addresses and
    phone numbers, and are posted from inside the clinic's network: https to public addresses
    only. true is for tests and local development (a receiver on this machine): it allows http
    and loopback or private addresses, which would let an endpoint reach internal services."""

    allow_private_addresses: bool = False


class LogSettings(Section):
    #: "json": one JSON object per line for a log collector (nurture.cli.logs); "text": for people.
    format: Literal["text", "json"] = "text"


class Secrets(BaseSettings):
    """Credentials, from the environment only (never from settings.toml or a commit)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    sendgrid_api_key: str = Field("", validation_alias="SENDGRID_API_KEY")
    twilio_account_sid: str = Field("", validation_alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: str = Field("", validation_alias="TWILIO_AUTH_TOKEN")
    secret_key: str = Field("", validation_alias="NURTURE_SECRET_KEY")
    booking_webhook_secret: str = Field("", validation_alias="NURTURE_BOOKING_WEBHOOK_SECRET")
    sendgrid_webhook_public_key: str = Field(
        "", validation_alias="NURTURE_SENDGRID_WEBHOOK_PUBLIC_KEY"
    )
    #: A bearer token a Prometheus server presents on /metrics (web.metrics); empty: staff only.
    metrics_token: str = Field("", validation_alias="NURTURE_METRICS_TOKEN")

    def __repr__(self) -> str:  # never print a secret, even in a traceback
        return "Secrets(<hidden>)"


class Settings(BaseSettings):
    """All settings: sections from settings.toml, each key overridable from the environment."""

    model_config = SettingsConfigDict(
        env_prefix="NURTURE_",
        env_nested_delimiter="__",
        extra="ignore",
        frozen=True,
    )

    clinic: ClinicSettings
    web: WebSettings = WebSettings()
    database: DatabaseSettings = DatabaseSettings()
    outbox: OutboxSettings = OutboxSettings()
    content: ContentSettings = ContentSettings()
    email: EmailSettings = EmailSettings()
    sms: SmsSettings = SmsSettings()
    sendgrid: SendGridSettings = SendGridSettings()
    twilio: TwilioSettings = TwilioSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    status: StatusSettings = StatusSettings()
    signup: SignupSettings = SignupSettings()
    log: LogSettings = LogSettings()
    review: ReviewSettings = ReviewSettings()
    webhooks: WebhookSettings = WebhookSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=settings_file())
        return (init_settings, env_settings, toml)

    @cached_property
    def secrets(self) -> Secrets:
        return Secrets()


def settings_file() -> Path:
    """NURTURE_SETTINGS_FILE, else ./settings.toml, else the repository's own settings.toml."""
    explicit = os.environ.get(SETTINGS_FILE_ENV)
    if explicit:
        return Path(explicit)
    local = Path.cwd() / "settings.toml"
    return local if local.exists() else REPO_ROOT / "settings.toml"


def describe_validation_error(exc: ValidationError) -> str:
    """One line per bad key, naming it the way a person would override it."""
    lines = []
    for error in exc.errors():
        dotted = ".".join(str(part) for part in error["loc"])
        env = "NURTURE_" + "__".join(str(part).upper() for part in error["loc"])
        lines.append(f"setting {dotted} (or {env}): {error['msg']}")
    return "; ".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Load and validate settings, turning a bad value into one ConfigError naming the key."""
    path = settings_file()
    if os.environ.get(SETTINGS_FILE_ENV) and not path.exists():
        raise ConfigError(f"settings file {path} (from {SETTINGS_FILE_ENV}) does not exist")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None
    except (OSError, ValueError) as exc:  # unreadable or malformed TOML
        raise ConfigError(f"cannot read settings file {path}: {exc}") from None
