"""The channel seam: what a send carries, what comes back, and the two kinds of failure.

Like django-anymail, a provider error is either rejected (permanent: never retried) or
unavailable (429, 5xx, timeout: retried with backoff), and carries the provider's response.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from core.errors import NurtureError


@dataclass(frozen=True)
class OutgoingEmail:
    message_id: int
    to: str
    from_email: str
    from_name: str
    subject: str
    html: str
    text: str
    reply_to: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    custom_args: dict[str, str] = field(default_factory=dict)
    categories: tuple[str, ...] = ()

    def without_content(self) -> OutgoingEmail:
        """What recording its outcome reads (the id and the address), without the bodies."""
        return OutgoingEmail(self.message_id, self.to, "", "", "", "", "")


@dataclass(frozen=True)
class OutgoingSms:
    message_id: int
    to: str
    body: str
    from_number: str = ""
    messaging_service_sid: str = ""
    status_callback: str = ""
    segments: int = 1

    def without_content(self) -> OutgoingSms:
        """What recording its outcome reads (the id, the address, the segments billed)."""
        return OutgoingSms(self.message_id, self.to, "", segments=self.segments)


@dataclass(frozen=True)
class SendResult:
    provider: str
    provider_message_id: str
    status: str = "sent"


class ProviderError(NurtureError):
    def __init__(self, provider: str, reason: str, *, code: str | None = None) -> None:
        self.provider, self.reason, self.code = provider, reason, code
        super().__init__(f"{provider}: {reason}" + (f" (code {code})" if code else ""))

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled with its fields (the sender process hands outcomes back to its worker); the
        default would call __init__ with the message alone."""
        return (_restore, (type(self), self.args, dict(self.__dict__)))


def _restore(cls: type[ProviderError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class ProviderRejected(ProviderError):
    """Permanent: bad address, opted out at the carrier, invalid payload. Never retried."""

    def __init__(
        self, provider: str, reason: str, *, code: str | None = None, suppress: str | None = None
    ) -> None:
        super().__init__(provider, reason, code=code)
        #: A suppression reason the engine should record (e.g. Twilio 21610: replied STOP).
        self.suppress = suppress


class ProviderUnavailable(ProviderError):
    """Transient: rate limited, server error, timeout. Retried with backoff."""

    def __init__(
        self,
        provider: str,
        reason: str,
        *,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(provider, reason, code=code)
        self.retry_after = retry_after


class ProviderUncertain(ProviderError):
    """The request may have reached the provider but no answer came back (a read timeout, a
    connection dropped after the body was written). Neither provider takes an idempotency key,
    so a retry could deliver twice: the message becomes "uncertain" for staff to resolve."""


class EmailChannel(Protocol):
    """Sends one email. A channel may also offer `async send_email_async(email)` (pooled,
    concurrent) and `async aclose()`; the dispatcher prefers them when present."""

    name: str

    def send_email(self, email: OutgoingEmail) -> SendResult: ...


class SmsChannel(Protocol):
    """Sends one text; may also offer `async send_sms_async(sms)` and `async aclose()`."""

    name: str

    def send_sms(self, sms: OutgoingSms) -> SendResult: ...


def pacing_bucket(channel: object) -> str | None:
    """The token-bucket name a channel's sends count against, or None when it is not paced.

    Real providers set `rate_bucket` (one per account or sender, shared by every worker); the
    offline outbox and the in-memory channel have no provider limit to respect unless told to.
    """
    return getattr(channel, "rate_bucket", None)
