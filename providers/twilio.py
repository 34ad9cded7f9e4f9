"""Twilio SMS: the official SDK for single sends, a pooled client for the dispatcher's batches.

Both carry one StatusCallback per message (our message id in its query string) for webhook
correlation, and either the Messaging Service SID or the from number from settings. The pooled
path posts the same form the SDK posts (`Messages.json`: To, From or MessagingServiceSid, Body,
StatusCallback) with HTTP basic auth, through one keep-alive session.
"""

from __future__ import annotations

import base64
from functools import cached_property, lru_cache
from string import ascii_letters, digits
from typing import TYPE_CHECKING

import orjson

from core.errors import ConfigError
from providers.base import OutgoingSms, ProviderRejected, ProviderUnavailable, SendResult
from providers.loopback import require_loopback
from providers.pooled import PooledHttp

NAME = "twilio"
TWILIO_API = "https://api.twilio.com"

#: Permanent Twilio errors: 21211 invalid To, 21614 not a mobile number, 21612 unreachable
#: route, 21408 region not enabled; 21610 means the person replied STOP to this sender.
INVALID_NUMBER_CODES = frozenset({21211, 21614, 21612, 21408})
OPTED_OUT_CODE = 21610
RATE_LIMIT_CODES = frozenset({20429, 14107})


if TYPE_CHECKING:
    from twilio.base.exceptions import TwilioRestException
    from twilio.rest import Client


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


def classify_twilio_error(exc: TwilioRestException) -> Exception:
    return classify(exc.status, exc.code, exc.msg or "Twilio error")


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


FORM = "application/x-www-form-urlencoded"


UNRESERVED = frozenset(ascii_letters + digits + "_.-~")


def _form_byte(byte: int) -> str:
    """One UTF-8 byte as `urlencode` writes it (quote_plus): an unreserved character as it is,
    a space as "+", any other byte as %XX."""
    if chr(byte) in UNRESERVED:
        return chr(byte)
    return "+" if byte == 0x20 else f"%{byte:02X}"


_FORM_BYTES = tuple(_form_byte(byte) for byte in range(256))


def _quote(value: str) -> str:
    """quote_plus(value), a table lookup per byte instead of quote_plus's Python loop."""
    return "".join(map(_FORM_BYTES.__getitem__, value.encode()))


_quote_setting = lru_cache(maxsize=64)(_quote)


def _quote_callback(url: str) -> str:
    """A status callback ends in the message id: its constant prefix is quoted once."""
    prefix = url.rstrip(digits)
    return _quote_setting(prefix) + url[len(prefix) :]


def form_body(sms: OutgoingSms) -> bytes:
    """The form, byte for byte as `urlencode(form(sms))` encodes it (as the SDK and aiohttp's
    FormData would), at half the cost: quoting was an eighth of a text's cost in the sender
    process. The sender's number and the callback's prefix are the same for every text
    and are quoted once."""
    fields = [f"To={_quote(sms.to)}", f"Body={_quote(sms.body)}"]
    if sms.messaging_service_sid:
        fields.append(f"MessagingServiceSid={_quote_setting(sms.messaging_service_sid)}")
    else:
        fields.append(f"From={_quote_setting(sms.from_number)}")
    if sms.status_callback:
        fields.append(f"StatusCallback={_quote_callback(sms.status_callback)}")
    return "&".join(fields).encode()


class TwilioChannel:
    name = NAME
    #: May be handed to the worker's sender process (scheduler/sender_process.py).
    portable = True

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
        self._credentials = (account_sid, auth_token, api_base_url, timeout)
        #: Twilio queues per sender (long code, toll-free, short code, messaging service).
        self.rate_bucket = f"twilio:{sender or account_sid}"
        self.url = f"{base}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self.pool = PooledHttp(
            NAME,
            concurrency=concurrency,
            timeout=timeout,
            headers={
                "Authorization": "Basic "
                + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode(),
                "Accept": "application/json",
                "User-Agent": "nurture",
                "Content-Type": FORM,
            },
        )

    def __getstate__(self) -> dict[str, object]:
        """Settings only: the SDK client is built again on first use."""
        return {key: value for key, value in self.__dict__.items() if key != "client"}

    @cached_property
    def client(self) -> Client:
        """The SDK client, built on first use: the dispatcher's pooled path does not need it,
        and importing twilio.rest costs a worker about 13 MB."""
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        from providers.twilio_sdk import LoopbackHttpClient

        account_sid, auth_token, api_base_url, timeout = self._credentials
        http_client = (
            LoopbackHttpClient(api_base_url, timeout=timeout)
            if api_base_url
            else TwilioHttpClient(timeout=timeout)
        )
        return Client(account_sid, auth_token, http_client=http_client)

    def send_sms(self, sms: OutgoingSms) -> SendResult:
        from twilio.base.exceptions import TwilioException, TwilioRestException

        sender: dict[str, str] = (
            {"messaging_service_sid": sms.messaging_service_sid}
            if sms.messaging_service_sid
            else {"from_": sms.from_number}
        )
        try:
            created = self.client.messages.create(
                to=sms.to, body=sms.body, status_callback=sms.status_callback or None, **sender
            )
        except TwilioRestException as exc:
            raise classify_twilio_error(exc) from exc
        except (TwilioException, OSError) as exc:
            raise ProviderUnavailable(NAME, f"network error: {exc}") from exc
        return SendResult(NAME, created.sid or "", created.status or "queued")

    async def send_sms_async(self, sms: OutgoingSms) -> SendResult:
        reply = await self.pool.post(self.url, data=form_body(sms))
        try:
            body = orjson.loads(reply.body or b"{}")
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if 200 <= reply.status < 300:
            return SendResult(NAME, str(body.get("sid") or ""), str(body.get("status") or "queued"))
        code = body.get("code")
        reason = str(body.get("message") or f"HTTP {reply.status}")
        raise classify(
            reply.status,
            int(code) if isinstance(code, int | str) and str(code).isdigit() else None,
            reason,
            reply.headers.get("Retry-After"),
        )

    async def aclose(self) -> None:
        await self.pool.aclose()
