"""Twilio Programmable Messaging: the SDK's `Messages.json` form (To, From or
MessagingServiceSid, Body, StatusCallback), encoded with `urllib.parse.urlencode` as the SDK
encodes it, posted with HTTP basic auth through the pooled transport (providers/pooled.py, which
also decides what a timeout means).

The sender is a messaging service when configured (Twilio picks the number and handles its
opt-out keywords), else the single number from settings.

`find_sent` reads Twilio's Messages list through the official SDK (`client.messages.list`,
which pages for us): it runs only to settle a text whose send was cut short, so its speed does
not matter, and the SDK's filters (`To`, `DateSent>`, `DateSent<`) are the documented ones.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import orjson

from core.errors import ConfigError
from providers.base import (
    FoundMessage,
    OutgoingSms,
    ProviderRejected,
    ProviderUnavailable,
    SendResult,
)
from providers.loopback import require_loopback
from providers.pooled import PooledHttp

NAME = "twilio"
TWILIO_API = "https://api.twilio.com"
FORM = "application/x-www-form-urlencoded"

#: The person replied STOP to this sender. Other permanent errors include 21211 invalid To,
#: 21614 not a mobile number, 21612 unreachable route and 21408 region not enabled.
OPTED_OUT_CODE = 21610
RATE_LIMIT_CODES = frozenset({20429, 14107})
#: Texts read from the Messages list at most: more than one candidate is ambiguous already,
#: and a few more leave room for those the settling step recognises as another message's.
LOOKUP_LIMIT = 20
#: The SDK's own request log prints the query (the recipient's full number) at INFO: it gets a
#: logger of its own that says only warnings.
SDK_LOG = logging.getLogger("nurture.twilio.sdk")
SDK_LOG.setLevel(logging.WARNING)


def classify(
    status: int, code: int | None, reason: str, retry_after: str | None = None
) -> Exception:
    """21610 fails and suppresses; 429/20429 and 5xx retry; every other error is permanent."""
    if code == OPTED_OUT_CODE:
        return ProviderRejected(NAME, reason, code=str(code), suppress="stop")
    if status == 429 or status >= 500 or code in RATE_LIMIT_CODES:
        delay = float(retry_after) if retry_after and retry_after.isdigit() else None
        return ProviderUnavailable(NAME, reason, code=str(code or status), retry_after=delay)
    return ProviderRejected(NAME, reason, code=str(code or status))


def form(sms: OutgoingSms) -> dict[str, str]:
    """The Messages.json form, with the SDK's parameter names."""
    data = {"To": sms.to, "Body": sms.body}
    if sms.messaging_service_sid:
        data["MessagingServiceSid"] = sms.messaging_service_sid
    else:
        data["From"] = sms.from_number
    if sms.status_callback:
        data["StatusCallback"] = sms.status_callback
    return data


def _answer(body: bytes) -> dict[str, object]:
    """Twilio's JSON answer, or an empty one when the body is not a JSON object."""
    try:
        parsed = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


class TwilioChannel:
    """The SMS `Provider` for Twilio. Its state is settings only (the pool opens on first use),
    so it may be handed to the worker's sender process."""

    name = NAME

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        api_base_url: str = "",
        timeout: float = 10.0,
        concurrency: int = 16,
        sender: str = "",
    ) -> None:
        if not account_sid or not auth_token:
            raise ConfigError(
                "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set "
                "when [sms] provider = 'twilio'"
            )
        base = require_loopback(api_base_url, "twilio.api_base_url") if api_base_url else TWILIO_API
        self.url = f"{base}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self.account_sid, self.auth_token, self.base, self.timeout = (
            account_sid,
            auth_token,
            base,
            timeout,
        )
        self.concurrency = concurrency
        #: Twilio queues per sender (long code, toll-free, short code, messaging service).
        self.rate_bucket: str | None = f"twilio:{sender or account_sid}"
        credentials = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self.pool = PooledHttp(
            NAME,
            concurrency=concurrency,
            timeout=timeout,
            headers={
                "Authorization": f"Basic {credentials}",
                "Accept": "application/json",
                "User-Agent": "nurture",
                "Content-Type": FORM,
            },
        )

    async def send(self, message: OutgoingSms) -> SendResult:
        reply = await self.pool.post(self.url, data=urlencode(form(message)).encode())
        body = _answer(reply.body)
        if 200 <= reply.status < 300:
            return SendResult(NAME, str(body.get("sid") or ""), str(body.get("status") or "queued"))
        code = body.get("code")
        raise classify(
            reply.status,
            int(code) if isinstance(code, int | str) and str(code).isdigit() else None,
            str(body.get("message") or f"HTTP {reply.status}"),
            reply.headers.get("Retry-After"),
        )

    async def find_sent(self, to: str, after: datetime, before: datetime) -> list[FoundMessage]:
        """Twilio's Messages list for `to`, sent between `after` and `before`."""
        return await asyncio.to_thread(self._list, to, after, before)

    def _list(self, to: str, after: datetime, before: datetime) -> list[FoundMessage]:
        from twilio.base.exceptions import TwilioException
        from twilio.rest import Client

        client = Client(self.account_sid, self.auth_token, http_client=self._http_client())
        try:
            listed = client.messages.list(
                to=to, date_sent_after=after, date_sent_before=before, limit=LOOKUP_LIMIT
            )
        # requests' errors (refused, timed out) are OSErrors; TwilioRestException is an answer
        # other than 2xx. Either way Twilio's log was not read, so nothing may be decided on it.
        except (TwilioException, OSError) as exc:
            raise ProviderUnavailable(NAME, f"Messages list failed: {exc}") from exc
        return [_found(item) for item in listed]

    def _http_client(self) -> Any:
        """The SDK's own client; for the loopback test URL, one that sends api.twilio.com's
        requests there (the SDK's documented custom HTTP client; it has no base-URL option)."""
        from twilio.http.http_client import TwilioHttpClient

        base = self.base

        class Loopback(TwilioHttpClient):  # type: ignore[misc]  # the SDK ships no type hints
            def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
                return super().request(method, url.replace(TWILIO_API, base, 1), *args, **kwargs)

        kind = TwilioHttpClient if base == TWILIO_API else Loopback
        return kind(timeout=self.timeout, logger=SDK_LOG)

    async def aclose(self) -> None:
        await self.pool.aclose()


def _found(item: Any) -> FoundMessage:
    """The SDK's MessageInstance as provider evidence (its status is Twilio's own word)."""
    return FoundMessage(
        sid=str(item.sid or ""),
        to=str(item.to or ""),
        from_number=str(item.from_ or ""),
        messaging_service_sid=str(item.messaging_service_sid or ""),
        status=str(item.status or ""),
        created_at=item.date_created,
        body=str(item.body or ""),
    )
