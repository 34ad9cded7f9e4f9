"""An in-memory channel that records what was sent and can be told to fail (for tests and
benchmarks; like anymail's test backend and procrastinate's in-memory connector)."""

from __future__ import annotations

import threading
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
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _check(self, payload: OutgoingEmail | OutgoingSms) -> None:
        if self.fail_with is not None:
            error = self.fail_with(payload)
            if error is not None:
                raise error

    def send_email(self, email: OutgoingEmail) -> SendResult:
        self._check(email)
        with self._lock:
            self.emails.append(email)
        return SendResult(self.name, f"mem-email-{email.message_id}")

    def send_sms(self, sms: OutgoingSms) -> SendResult:
        self._check(sms)
        with self._lock:
            self.texts.append(sms)
        return SendResult(self.name, f"mem-sms-{sms.message_id}")

    @property
    def sent_ids(self) -> list[int]:
        return [item.message_id for item in [*self.emails, *self.texts]]
