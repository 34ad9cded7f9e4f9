"""SendGrid through the official SDK's Mail helper.

RFC 8058 / Gmail and Yahoo bulk-sender rules: List-Unsubscribe carries the one-click HTTPS URL
(and a mailto when configured) with List-Unsubscribe-Post. Our message id travels in custom_args
for webhook correlation; categories never carry personal data; SendGrid's own click tracking is
off so links are not wrapped twice.

The SDK is imported on first use: a worker whose sends go through its sender process never
builds a payload itself, and the SDK costs a process about 8 MB (most of it the cryptography
package, for the event webhook's signature check, which the sender process leaves out: see
`leave_out_webhook_helper`).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
import urllib.error
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING

import orjson

from core.errors import ConfigError
from providers.base import OutgoingEmail, ProviderRejected, ProviderUnavailable, SendResult
from providers.loopback import require_loopback
from providers.pooled import PooledHttp

if TYPE_CHECKING:
    from sendgrid import SendGridAPIClient
    from sendgrid.helpers.mail import Mail

NAME = "sendgrid"
#: The SDK's event-webhook helper: its package imports it, and it imports cryptography.
WEBHOOK_HELPER = "sendgrid.helpers.eventwebhook"
API_HOST = "https://api.sendgrid.com"
MAIL_SEND = "/v3/mail/send"


def build_mail(email: OutgoingEmail) -> Mail:
    """The v3 payload, built with the SDK's helpers (also used by the pooled sender)."""
    sdk = _mail_helpers()
    recipient = sdk.To()
    # Set, not parsed: To(address) runs the stdlib's RFC 822 parser on every call (a third of
    # the SDK's build time), and our addresses are already normalised by contacts.normalize.
    recipient.email = email.to
    mail = sdk.Mail(
        from_email=sdk.From(email.from_email, email.from_name),
        to_emails=recipient,
        subject=email.subject,
    )
    mail.add_content(sdk.Content("text/plain", email.text))
    mail.add_content(sdk.Content("text/html", email.html))
    if email.reply_to:
        reply_to = sdk.ReplyTo()
        reply_to.email = email.reply_to  # set, not parsed (see above)
        mail.reply_to = reply_to
    for name, value in email.headers.items():
        mail.add_header(sdk.Header(name, value))
    for name, value in email.custom_args.items():
        # On the personalization (p=0): the v3 spec types a top-level custom_args as a string,
        # and SendGrid echoes either kind in event webhooks.
        mail.add_custom_arg(sdk.CustomArg(name, value, p=0))
    for category in email.categories:
        mail.add_category(sdk.Category(category))
    tracking = sdk.TrackingSettings()
    tracking.click_tracking = sdk.ClickTracking(enable=False, enable_text=False)
    mail.tracking_settings = tracking
    return mail


@cache
def _mail_helpers() -> ModuleType:
    """The SDK's mail helpers, imported once, on first use (see the module docstring)."""
    return importlib.import_module("sendgrid.helpers.mail")


def leave_out_webhook_helper() -> bool:
    """For a process that only sends (the sender process): the SDK's package imports its
    event-webhook helper, and with it the cryptography package, about 7 MB of the process, to
    check signatures that this process never sees. An empty module put in its place first keeps
    them out; webhooks are checked by the web process, which imports the SDK whole. Returns
    False, changing nothing, once the SDK is imported (too late to leave anything out)."""
    if "sendgrid" in sys.modules:
        return False
    sys.modules.setdefault(WEBHOOK_HELPER, ModuleType(WEBHOOK_HELPER))
    return True


def classify_http_error(status: int, body: str, retry_after: str | None = None) -> Exception:
    """429 and 5xx are transient; any other 4xx (400 bad payload, 401, 403, 413) is permanent."""
    reason = _error_text(body) or f"HTTP {status}"
    if status == 429 or status >= 500:
        delay = float(retry_after) if retry_after and retry_after.isdigit() else None
        return ProviderUnavailable(NAME, reason, code=str(status), retry_after=delay)
    return ProviderRejected(NAME, reason, code=str(status))


def _retry_after(headers: object) -> str | None:
    """The Retry-After header of a 429, from either HTTP client's header mapping."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    value = get("Retry-After")
    return str(value) if value is not None else None


def _error_text(body: str) -> str:
    try:
        errors = json.loads(body).get("errors", [])
        return "; ".join(str(error.get("message", error)) for error in errors)
    except (ValueError, AttributeError):
        return body[:300]


class SendGridChannel:
    """Sync `send_email` through the SDK client (one connection per call, as the SDK does);
    `send_email_async` posts the same SDK-built JSON through a pooled keep-alive session."""

    name = NAME
    #: May be handed to the worker's sender process (scheduler/sender_process.py).
    portable = True

    def __init__(
        self, api_key: str, api_host: str = "", *, concurrency: int = 16, timeout: float = 10.0
    ) -> None:
        if not api_key:
            raise ConfigError("SENDGRID_API_KEY must be set when [email] provider = 'sendgrid'")
        self.api_key = api_key
        self.host = require_loopback(api_host, "sendgrid.api_host") if api_host else None
        #: One bucket per SendGrid account: its rate limit is per API key (never stored itself).
        self.rate_bucket = f"sendgrid:{hashlib.sha256(api_key.encode()).hexdigest()[:12]}"
        self.pool = PooledHttp(
            NAME,
            concurrency=concurrency,
            timeout=timeout,
            headers={
                "Authorization": f"Bearer {api_key}",
                "User-Agent": "nurture",
                "Content-Type": "application/json",
            },
        )
        self.url = (self.host or API_HOST) + MAIL_SEND

    def _client(self) -> SendGridAPIClient:
        from sendgrid import SendGridAPIClient

        # A client per call: the SDK keeps per-call headers on the client object (shared dict).
        if self.host:
            return SendGridAPIClient(api_key=self.api_key, host=self.host)
        return SendGridAPIClient(api_key=self.api_key)

    def send_email(self, email: OutgoingEmail) -> SendResult:
        from python_http_client.exceptions import HTTPError

        try:
            response = self._client().send(build_mail(email))
        except HTTPError as exc:
            body = exc.body.decode() if isinstance(exc.body, bytes) else str(exc.body)
            raise classify_http_error(exc.status_code, body, _retry_after(exc.headers)) from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise ProviderUnavailable(NAME, f"network error: {exc}") from exc
        message_id = response.headers.get("X-Message-Id") or ""
        return SendResult(NAME, message_id, "queued")

    async def send_email_async(self, email: OutgoingEmail) -> SendResult:
        payload = orjson.dumps(build_mail(email).get())  # 4x faster than json on 10 kB of HTML
        reply = await self.pool.post(self.url, data=payload)
        if reply.status in (200, 202):
            return SendResult(NAME, reply.headers.get("X-Message-Id", ""), "queued")
        body = reply.body.decode(errors="replace")
        if "sl-violations" in reply.headers:  # the spec mocks put their reasons here
            body = f"{_error_text(body)}: {reply.headers['sl-violations']}"
        raise classify_http_error(reply.status, body, _retry_after(reply.headers))

    async def aclose(self) -> None:
        await self.pool.aclose()
