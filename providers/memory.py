"""An in-memory provider that records what was sent and can be told to fail (for tests and
benchmarks; like anymail's test backend and procrastinate's in-memory connector). One object
serves as both the email and the SMS provider."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from providers.base import OutgoingEmail, OutgoingSms, SendResult

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

    async def send(self, message: OutgoingEmail | OutgoingSms) -> SendResult:
        if self.fail_with is not None:
            error = self.fail_with(message)
            if error is not None:
                raise error
        if isinstance(message, OutgoingEmail):
            self.emails.append(message)
            return SendResult(self.name, f"mem-email-{message.message_id}")
        self.texts.append(message)
        return SendResult(self.name, f"mem-sms-{message.message_id}")

    async def aclose(self) -> None:
        """Nothing to release."""

    @property
    def sent_ids(self) -> list[int]:
        return [item.message_id for item in self.emails] + [item.message_id for item in self.texts]
