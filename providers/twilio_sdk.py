"""The Twilio SDK's HTTP client pointed at a loopback mock (imported only when the SDK is used)."""

from __future__ import annotations

from typing import Any

from twilio.http.http_client import TwilioHttpClient

from providers.loopback import require_loopback

TWILIO_API = "https://api.twilio.com"


class LoopbackHttpClient(TwilioHttpClient):
    """Rewrites api.twilio.com to a loopback mock (the SDK has no base-URL option; its guide on
    custom HTTP clients suggests a subclass like this one)."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = require_loopback(base_url, "twilio.api_base_url")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if url.startswith(TWILIO_API):
            url = self.base_url + url[len(TWILIO_API) :]
        return super().request(method, url, *args, **kwargs)
