"""An in-memory provider that records what was sent and can be told to fail (for tests and
benchmarks; like anymail's test backend and procrastinate's in-memory connector). One object
serves as both the email and the SMS provider."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from core.clock import Clock, utcnow
from providers.base import FoundMessage, OutgoingEmail, OutgoingSms, SendResult

Failure = Callable[[OutgoingEmail | OutgoingSms], Exception | None]


@dataclass
class MemoryChannel:
    name: str = "memory"
    emails: list[OutgoingEmail] = field(default_factory=list)
    texts: list[OutgoingSms] = field(default_factory=list)
    #: Called before each send; an exception it returns is raised instead of sending.
    fail_with: Failure | None = None
    #: A token-bucket name to pace this channel like a provider (None: unpaced).
    rate_bucket: str | None = None
    #: Calls under way at once (the settings' default for the real providers).
    concurrency: int = 16
    #: When each text was accepted (tests hand in their app's frozen clock).
    clock: Clock = utcnow
    texted_at: list[datetime] = field(default_factory=list)
    #: Raised by `find_sent` instead of answering (a provider log that cannot be read).
    lookup_error: Exception | None = None

    async def send(self, message: OutgoingEmail | OutgoingSms) -> SendResult:
        if self.fail_with is not None:
            error = self.fail_with(message)
            if error is not None:
                raise error
        if isinstance(message, OutgoingEmail):
            self.emails.append(message)
            return SendResult(self.name, f"mem-email-{message.message_id}")
        self.texts.append(message)
        self.texted_at.append(self.clock())
        return SendResult(self.name, f"mem-sms-{message.message_id}")

    async def find_sent(self, to: str, after: datetime, before: datetime) -> list[FoundMessage]:
        """The texts this channel accepted for `to` in the window, as Twilio's list answers."""
        if self.lookup_error is not None:
            raise self.lookup_error
        return [
            FoundMessage(
                f"mem-sms-{text.message_id}",
                text.to,
                text.from_number,
                text.messaging_service_sid,
                "queued",
                at,
                text.body,
            )
            for text, at in zip(self.texts, self.texted_at, strict=True)
            if text.to == to and after <= at <= before
        ]

    async def aclose(self) -> None:
        """Nothing to release."""

    @property
    def sent_ids(self) -> list[int]:
        return [item.message_id for item in self.emails] + [item.message_id for item in self.texts]
