"""`nurture doctor`: what production needs, one verdict a line, each naming the setting to fix.

Every check is a small function of a `Context` that returns a `Finding` (or None when it does
not apply, e.g. `random_page_cost` on SQLite). A check may raise: `run_checks` is the one place
that turns an exception (a refused connection, a 401 from a provider, a database that does not
answer) into a failed line naming the check's settings, so the checks read as the rule alone.

Provider checks go through the official SDKs (SendGrid's GET /v3/scopes, Twilio's account,
IncomingPhoneNumbers and Messaging Services fetches), pointed at the configured loopback test
hosts when set (providers.loopback), so tests run them against the Prism mocks.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from typing import Any

from sqlalchemy import Engine, text

from core.clock import Clock
from core.settings import Settings
from providers.loopback import require_loopback
from storage.db import current_revision, head_revision

MIN_SECRET_LENGTH = 32
#: The database's clock and ours may differ this much before due times and heartbeats drift.
MAX_CLOCK_SKEW_SECONDS = 5.0
#: PostgreSQL's default, priced for spinning disks; on SSD 1.1 makes index scans win.
SPINNING_DISK_PAGE_COST = 4.0
TIMEOUT_SECONDS = 10.0
TWILIO_API = "https://api.twilio.com"
TWILIO_MESSAGING = "https://messaging.twilio.com"
ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")


class Verdict(StrEnum):
    OK = "✓"
    WARN = "!"
    FAIL = "✗"


@dataclass(frozen=True)
class Finding:
    verdict: Verdict
    line: str


def ok(line: str) -> Finding:
    return Finding(Verdict.OK, line)


def fail(line: str) -> Finding:
    return Finding(Verdict.FAIL, line)


def passes(condition: bool, good: str, bad: str) -> Finding:
    return ok(good) if condition else fail(bad)


@dataclass
class Context:
    """What the checks read: settings, the database, the app's clock, and SDK clients built on
    first use (a check that needs none never builds one)."""

    settings: Settings
    engine: Engine
    clock: Clock

    @cached_property
    def sendgrid(self) -> Any:
        from sendgrid import SendGridAPIClient

        host = self.settings.sendgrid.api_host
        return SendGridAPIClient(
            api_key=self.settings.secrets.sendgrid_api_key,
            host=require_loopback(host, "sendgrid.api_host")
            if host
            else "https://api.sendgrid.com",
        )

    @cached_property
    def twilio(self) -> Any:
        from twilio.rest import Client

        secrets, twilio = self.settings.secrets, self.settings.twilio
        hosts = {}
        if twilio.api_base_url:
            hosts[TWILIO_API] = require_loopback(twilio.api_base_url, "twilio.api_base_url")
        if twilio.messaging_base_url:
            hosts[TWILIO_MESSAGING] = require_loopback(
                twilio.messaging_base_url, "twilio.messaging_base_url"
            )
        return Client(
            secrets.twilio_account_sid, secrets.twilio_auth_token, http_client=_http(hosts)
        )


def _http(hosts: dict[str, str]) -> Any:
    """The SDK's own HTTP client; with loopback test hosts, one that sends Twilio's requests
    there (the SDK's documented custom HTTP client: it has no base-URL option)."""
    from twilio.http.http_client import TwilioHttpClient

    class Loopback(TwilioHttpClient):  # type: ignore[misc]  # the SDK ships no type hints
        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            for real, test in hosts.items():
                url = url.replace(real, test, 1) if url.startswith(real) else url
            return super().request(method, url, *args, **kwargs)

    return Loopback(timeout=TIMEOUT_SECONDS)


# -- the checks ---------------------------------------------------------------------------------
def public_url_is_https(ctx: Context) -> Finding:
    url = ctx.settings.web.public_base_url
    return passes(
        url.startswith("https://"),
        f"web.public_base_url is HTTPS ({url})",
        f"web.public_base_url (NURTURE_WEB__PUBLIC_BASE_URL) must be https://, is {url}",
    )


def secret_key_is_long(ctx: Context) -> Finding:
    return _long_secret("NURTURE_SECRET_KEY", ctx.settings.secrets.secret_key)


def booking_secret_is_long(ctx: Context) -> Finding:
    return _long_secret(
        "NURTURE_BOOKING_WEBHOOK_SECRET", ctx.settings.secrets.booking_webhook_secret
    )


def _long_secret(name: str, value: str) -> Finding:
    if not value:
        return fail(f"{name} is not set (at least {MIN_SECRET_LENGTH} random characters)")
    return passes(
        len(value) >= MIN_SECRET_LENGTH,
        f"{name} is set ({len(value)} characters)",
        f"{name} is too short: {len(value)} characters, at least {MIN_SECRET_LENGTH}",
    )


def migrations_applied(ctx: Context) -> Finding:
    current, head = current_revision(ctx.engine), head_revision()
    return passes(
        current == head,
        f"database schema is current ({head})",
        f"database schema is at {current or 'nothing'}, not {head}: run `nurture db upgrade`",
    )


def sendgrid_can_send(ctx: Context) -> Finding:
    if ctx.settings.email.provider != "sendgrid":
        return fail("email.provider (NURTURE_EMAIL__PROVIDER) is 'outbox': set it to sendgrid")
    if not ctx.settings.secrets.sendgrid_api_key:
        return fail("SENDGRID_API_KEY is not set")
    reply = ctx.sendgrid.client.scopes.get(timeout=TIMEOUT_SECONDS)
    scopes = _json(reply.body).get("scopes") or []
    return passes(
        "mail.send" in scopes,
        "SendGrid API key may send mail (scope mail.send)",
        "SENDGRID_API_KEY lacks the mail.send scope: give the key Mail Send access",
    )


def sendgrid_webhook_key(ctx: Context) -> Finding:
    key = ctx.settings.secrets.sendgrid_webhook_public_key
    if not key:
        return fail(
            "NURTURE_SENDGRID_WEBHOOK_PUBLIC_KEY is not set: copy the Signed Event Webhook's "
            "verification key from SendGrid"
        )
    return passes(
        _is_public_key(key),
        "SendGrid Event Webhook verification key is set",
        "NURTURE_SENDGRID_WEBHOOK_PUBLIC_KEY is not a base64 public key (SendGrid's "
        "verification key, without PEM armour)",
    )


def _is_public_key(value: str) -> bool:
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        load_der_public_key(base64.b64decode(value, validate=True))
    except (ValueError, binascii.Error):
        return False
    return True


def _twilio_configured(ctx: Context) -> bool:
    secrets = ctx.settings.secrets
    return (
        ctx.settings.sms.provider == "twilio"
        and ACCOUNT_SID.fullmatch(secrets.twilio_account_sid) is not None
        and bool(secrets.twilio_auth_token)
    )


def twilio_account_active(ctx: Context) -> Finding:
    if ctx.settings.sms.provider != "twilio":
        return fail("sms.provider (NURTURE_SMS__PROVIDER) is 'outbox': set it to twilio")
    if not _twilio_configured(ctx):
        return fail("TWILIO_ACCOUNT_SID (AC + 32 hex digits) and TWILIO_AUTH_TOKEN must be set")
    sid = ctx.settings.secrets.twilio_account_sid
    status = ctx.twilio.api.v2010.accounts(sid).fetch().status
    return passes(
        status == "active",
        "Twilio account is active",
        f"Twilio account is {status}: TWILIO_ACCOUNT_SID must name an active account",
    )


def twilio_sender_exists(ctx: Context) -> Finding | None:
    if not _twilio_configured(ctx):
        return None  # twilio_account_active names what to set first
    sms = ctx.settings.sms
    if sms.messaging_service_sid:
        service = ctx.twilio.messaging.v1.services(sms.messaging_service_sid).fetch()
        return ok(f"Twilio messaging service {service.sid} exists ({service.friendly_name})")
    if not sms.from_number:
        return fail("sms.from_number or sms.messaging_service_sid must be set")
    found = [number.phone_number for number in _numbers(ctx)]
    return passes(
        sms.from_number in found,
        f"Twilio number {sms.from_number} belongs to the account",
        f"sms.from_number {sms.from_number} is not a number of this Twilio account",
    )


def twilio_webhooks_point_here(ctx: Context) -> Finding | None:
    """Inbound texts (STOP, HELP, replies) reach us only if Twilio posts them to our URL; each
    text carries its own StatusCallback, so a sender-wide one may be empty, else ours too."""
    if not _twilio_configured(ctx):
        return None  # twilio_account_active names what to set first
    sms, base = ctx.settings.sms, ctx.settings.web.public_base_url
    if sms.messaging_service_sid:
        service = ctx.twilio.messaging.v1.services(sms.messaging_service_sid).fetch()
        where = f"messaging service {service.sid}"
        inbound, callback = service.inbound_request_url, service.status_callback
    else:
        numbers = [n for n in _numbers(ctx) if n.phone_number == sms.from_number]
        if not numbers:
            return fail(f"sms.from_number {sms.from_number} is not a number of this account")
        where = f"number {sms.from_number}"
        inbound, callback = numbers[0].sms_url, numbers[0].status_callback
    wrong = [
        f"{name} is {url or 'empty'}"
        for name, url, may_be_empty in (
            ("inbound URL", inbound, False),
            ("status callback", callback, True),
        )
        if not (_under(url, base) or (may_be_empty and not url))
    ]
    return passes(
        not wrong,
        f"Twilio {where} posts inbound texts to {base}",
        f"Twilio {where}: {'; '.join(wrong)}, not under web.public_base_url {base}: "
        "set it in Twilio's console",
    )


def _numbers(ctx: Context) -> Iterator[Any]:
    listed = ctx.twilio.api.v2010.account.incoming_phone_numbers.list(
        phone_number=ctx.settings.sms.from_number, limit=20
    )
    return iter(listed)


def _under(url: str | None, base: str) -> bool:
    return bool(url) and (url == base or str(url).startswith(base.rstrip("/") + "/"))


def postgres_page_cost(ctx: Context) -> Finding | None:
    if ctx.engine.dialect.name != "postgresql":
        return None
    with ctx.engine.connect() as connection:
        cost = float(connection.execute(text("SHOW random_page_cost")).scalar_one())
    if cost == SPINNING_DISK_PAGE_COST:
        return Finding(
            Verdict.WARN,
            "PostgreSQL random_page_cost is 4 (spinning disks): on SSD set it to 1.1 "
            "(ALTER DATABASE ... SET random_page_cost = 1.1)",
        )
    return ok(f"PostgreSQL random_page_cost is {cost:g}")


def webhooks_post_to_public_addresses(ctx: Context) -> Finding | None:
    """Outbound webhooks to private addresses are for tests and local development: in
    production they let whoever registers an endpoint reach the clinic's own network (SSRF)."""
    if not ctx.settings.webhooks.allow_private_addresses:
        return None
    return fail(
        "[webhooks] allow_private_addresses is on: outbound webhooks may post into this "
        "network (for tests only); set it to false"
    )


def clocks_agree(ctx: Context) -> Finding:
    skew = (ctx.clock() - database_now(ctx.engine)).total_seconds()
    return passes(
        abs(skew) <= MAX_CLOCK_SKEW_SECONDS,
        f"this machine's clock and the database's agree ({skew:+.1f} s)",
        f"this machine's clock is {skew:+.1f} s off the database's: sync both with NTP",
    )


def database_now(engine: Engine) -> datetime:
    """The database server's own clock, in UTC."""
    query = (
        "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"
        if engine.dialect.name == "sqlite"
        else "SELECT clock_timestamp()"
    )
    with engine.connect() as connection:
        value: str | datetime = connection.execute(text(query)).scalar_one()
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _json(body: bytes | str) -> dict[str, Any]:
    import orjson

    parsed = orjson.loads(body or b"{}")
    return parsed if isinstance(parsed, dict) else {}


@dataclass(frozen=True)
class Check:
    """A check and the settings to look at when it cannot even run."""

    run: Callable[[Context], Finding | None]
    settings: str


CHECKS: tuple[Check, ...] = (
    Check(public_url_is_https, "web.public_base_url"),
    Check(secret_key_is_long, "NURTURE_SECRET_KEY"),
    Check(booking_secret_is_long, "NURTURE_BOOKING_WEBHOOK_SECRET"),
    Check(migrations_applied, "database.url"),
    Check(sendgrid_can_send, "SENDGRID_API_KEY, sendgrid.api_host"),
    Check(sendgrid_webhook_key, "NURTURE_SENDGRID_WEBHOOK_PUBLIC_KEY"),
    Check(twilio_account_active, "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, twilio.api_base_url"),
    Check(
        twilio_sender_exists,
        "sms.from_number, sms.messaging_service_sid, twilio.api_base_url, "
        "twilio.messaging_base_url",
    ),
    Check(
        twilio_webhooks_point_here,
        "sms.from_number, sms.messaging_service_sid, twilio.api_base_url, "
        "twilio.messaging_base_url",
    ),
    Check(postgres_page_cost, "database.url"),
    Check(webhooks_post_to_public_addresses, "webhooks.allow_private_addresses"),
    Check(clocks_agree, "database.url"),
)


def run_checks(ctx: Context, checks: tuple[Check, ...] = CHECKS) -> list[Finding]:
    """Every check's finding, in order. The one place a check's exception becomes a line: the
    check could not run (a provider unreachable or refusing the credentials, a database down),
    which is a failure naming what to look at."""
    findings = []
    for check in checks:
        try:
            finding = check.run(ctx)
        except Exception as exc:
            finding = fail(
                f"{check.run.__name__.replace('_', ' ')}: could not check "
                f"({type(exc).__name__}: {_first_line(exc)}): look at {check.settings}"
            )
        if finding is not None:
            findings.append(finding)
    return findings


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else "no message"
