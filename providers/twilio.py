"""Twilio SMS through the official SDK, one StatusCallback per message for correlation."""

from __future__ import annotations

from typing import Any

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from nurture.errors import ConfigError
from providers.base import OutgoingSms, ProviderRejected, ProviderUnavailable, SendResult
from providers.loopback import require_loopback

NAME = "twilio"
TWILIO_API = "https://api.twilio.com"

#: Permanent Twilio errors; 21610 also means the person replied STOP to this sender.
INVALID_NUMBER_CODES = frozenset({21211, 21614, 21612, 21408})
OPTED_OUT_CODE = 21610


class LoopbackHttpClient(TwilioHttpClient):
    """Rewrites api.twilio.com to a loopback mock (the SDK has no base-URL option)."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = require_loopback(base_url, "twilio.api_base_url")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if url.startswith(TWILIO_API):
            url = self.base_url + url[len(TWILIO_API) :]
        return super().request(method, url, *args, **kwargs)


def classify_twilio_error(exc: TwilioRestException) -> Exception:
    code = exc.code
    reason = exc.msg or "Twilio error"
    if code == OPTED_OUT_CODE:
        return ProviderRejected(NAME, reason, code=str(code), suppress="stop")
    if exc.status == 429 or code == 20429 or exc.status >= 500:
        return ProviderUnavailable(NAME, reason, code=str(code or exc.status))
    return ProviderRejected(NAME, reason, code=str(code or exc.status))


class TwilioChannel:
    name = NAME

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        api_base_url: str = "",
        timeout: float = 10.0,
    ) -> None:
        if not account_sid or not auth_token:
            raise ConfigError(
                "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set when [sms] provider = 'twilio'"
            )
        http_client = (
            LoopbackHttpClient(api_base_url, timeout=timeout)
            if api_base_url
            else TwilioHttpClient(timeout=timeout)
        )
        self.client = Client(account_sid, auth_token, http_client=http_client)

    def send_sms(self, sms: OutgoingSms) -> SendResult:
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
