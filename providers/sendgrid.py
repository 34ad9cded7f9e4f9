"""SendGrid: the v3 mail-send payload built by the official SDK's Mail helper, posted through the
pooled transport (providers/pooled.py, which also decides what a timeout means).

RFC 8058 / Gmail and Yahoo bulk-sender rules: List-Unsubscribe carries the one-click HTTPS URL
(and a mailto when configured) with List-Unsubscribe-Post. Our message id travels in custom_args
for webhook correlation; categories never carry personal data; SendGrid's own click tracking is
off so links are not wrapped twice.

The SDK's helpers are imported on first use: a worker hands its sends to its sender process and
never builds a payload (the SDK, with the cryptography package its webhook helper loads, costs a
process about 8 MB).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

import orjson

from core.errors import ConfigError
from providers.base import OutgoingEmail, ProviderRejected, ProviderUnavailable, SendResult
from providers.loopback import require_loopback
from providers.pooled import PooledHttp

if TYPE_CHECKING:
    from sendgrid.helpers.mail import Mail

NAME = "sendgrid"
API_HOST = "https://api.sendgrid.com"
MAIL_SEND = "/v3/mail/send"


def build_mail(email: OutgoingEmail) -> Mail:
    """The v3 payload, built with the SDK's helpers."""
    from sendgrid.helpers.mail import (
        Category,
        ClickTracking,
        Content,
        CustomArg,
        From,
        Header,
        Mail,
        ReplyTo,
        To,
        TrackingSettings,
    )

    recipient = To()
    # Set, not parsed: To(address) runs the stdlib's RFC 822 parser on every call (a third of
    # the SDK's build time), and our addresses are already normalised by contacts.normalize.
    recipient.email = email.to
    mail = Mail(
        from_email=From(email.from_email, email.from_name),
        to_emails=recipient,
        subject=email.subject,
    )
    mail.add_content(Content("text/plain", email.text))
    mail.add_content(Content("text/html", email.html))
    if email.reply_to:
        reply_to = ReplyTo()
        reply_to.email = email.reply_to  # set, not parsed (see above)
        mail.reply_to = reply_to
    for name, value in email.headers.items():
        mail.add_header(Header(name, value))
    for name, value in email.custom_args.items():
        # On the personalization (p=0): the v3 spec types a top-level custom_args as a string,
        # and SendGrid echoes either kind in event webhooks.
        mail.add_custom_arg(CustomArg(name, value, p=0))
    for category in email.categories:
        mail.add_category(Category(category))
    tracking = TrackingSettings()
    tracking.click_tracking = ClickTracking(enable=False, enable_text=False)
    mail.tracking_settings = tracking
    return mail


def classify_http_error(status: int, body: str, retry_after: str | None = None) -> Exception:
    """429 and 5xx are transient; any other 4xx (400 bad payload, 401, 403, 413) is permanent."""
    reason = _error_text(body) or f"HTTP {status}"
    if status == 429 or status >= 500:
        delay = float(retry_after) if retry_after and retry_after.isdigit() else None
        return ProviderUnavailable(NAME, reason, code=str(status), retry_after=delay)
    return ProviderRejected(NAME, reason, code=str(status))


def _error_text(body: str) -> str:
    try:
        errors = json.loads(body).get("errors", [])
        return "; ".join(str(error.get("message", error)) for error in errors)
    except (ValueError, AttributeError):
        return body[:300]


def _reason(body: bytes, headers: Mapping[str, str]) -> str:
    text = body.decode(errors="replace")
    if "sl-violations" in headers:  # the spec mocks put their reasons here
        return f"{_error_text(text)}: {headers['sl-violations']}"
    return text


class SendGridChannel:
    """The email `Provider` for SendGrid. Its state is settings only (the pool opens on first
    use), so it may be handed to the worker's sender process."""

    name = NAME

    def __init__(
        self, api_key: str, api_host: str = "", *, concurrency: int = 16, timeout: float = 10.0
    ) -> None:
        if not api_key:
            raise ConfigError("SENDGRID_API_KEY must be set when [email] provider = 'sendgrid'")
        host = require_loopback(api_host, "sendgrid.api_host") if api_host else API_HOST
        self.url = host + MAIL_SEND
        self.concurrency = concurrency
        #: One bucket per SendGrid account: its rate limit is per API key (never stored itself).
        self.rate_bucket: str | None = (
            f"sendgrid:{hashlib.sha256(api_key.encode()).hexdigest()[:12]}"
        )
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

    async def send(self, message: OutgoingEmail) -> SendResult:
        payload = orjson.dumps(build_mail(message).get())  # 4x faster than json on 10 kB of HTML
        reply = await self.pool.post(self.url, data=payload)
        if reply.status in (200, 202):
            return SendResult(NAME, reply.headers.get("X-Message-Id", ""), "queued")
        raise classify_http_error(
            reply.status, _reason(reply.body, reply.headers), reply.headers.get("Retry-After")
        )

    async def aclose(self) -> None:
        await self.pool.aclose()
