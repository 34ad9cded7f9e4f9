"""The channel seam: what a send carries, what comes back, the `Provider` protocol, and the
three kinds of failure.

Like django-anymail, a provider error carries the provider's response and says what the engine
may do next: rejected (permanent: never retried), unavailable (nothing reached the provider:
retried with backoff) or uncertain (the request may have reached it: never blindly retried).
Which transport failure is which is decided in one place, `providers.pooled`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

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


@dataclass(frozen=True)
class FoundMessage:
    """A text the provider's own log holds (Twilio's Messages list): the evidence that settles
    a message whose send was cut short (scheduler/settle.py). `body` is compared, never logged."""

    sid: str
    to: str
    from_number: str = ""
    messaging_service_sid: str = ""
    status: str = ""
    created_at: datetime | None = None
    body: str = ""


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
    """Transient, and nothing was accepted: rate limited (429), a server error (5xx), or the
    connection could not be made (refused, connect timeout). Retried with backoff."""

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


#: The message type a provider sends (contravariant: a provider of both, like the outbox,
#: serves as either).
M = TypeVar("M", bound=OutgoingEmail | OutgoingSms, contravariant=True)


class Provider(Protocol[M]):
    """One channel's sender: the dispatcher knows providers only through this.

    `send` is the one path to the provider: it returns the provider's acceptance or raises one of
    the three errors above. `rate_bucket` names the token bucket its sends count against (one per
    account or sender, shared by every worker; None: not paced), and `concurrency` how many of
    its calls may be under way at once. `aclose` releases its connections; it is called on the
    event loop that made them.
    """

    @property
    def name(self) -> str: ...

    @property
    def rate_bucket(self) -> str | None: ...

    @property
    def concurrency(self) -> int: ...

    async def send(self, message: M) -> SendResult: ...

    async def aclose(self) -> None: ...


EmailProvider = Provider[OutgoingEmail]


class SmsProvider(Provider[OutgoingSms], Protocol):
    """The SMS channel also answers from its own log which texts went to a number.

    Neither provider takes an idempotency key, so after a crash between the provider call and
    its record only the provider knows whether a text left. `find_sent` lists what the provider
    created for `to` between `after` and `before` (aware UTC); it raises `ProviderUnavailable`
    when the log cannot be read, so that nothing is decided on a failed lookup."""

    async def find_sent(self, to: str, after: datetime, before: datetime) -> list[FoundMessage]: ...
