"""What keeps bots and floods off the sign-up form, without outside services (no CAPTCHA).

* A honeypot field people never see: a form that fills it was filled by a script.
* A signed, time-stamped form token (itsdangerous TimestampSigner, its own salt, so no other
  token of ours is a form token): a form sent back within seconds of being served was not
  typed by a person; one older than an hour is a stale tab or a replayed capture.
* A per-address limit: so many sign-ups an hour from one IP address, email address or phone
  number, so nobody can use the form to flood a stranger's inbox or phone with confirmations.
  It is counted in this process (a sliding window in memory): with several web processes a
  sender may reach the limit times their number, and a restart forgets it; enough to stop a
  flood, and no database write per attempt.

Timestamps come from the app's clock through TimestampSigner's documented `get_timestamp`
hook, so a frozen test clock and the ages we check agree.
"""

from __future__ import annotations

import enum
import threading
from collections import deque
from datetime import datetime, timedelta

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

from core.clock import Clock

FORM, CONFIRM = "nurture.join.form", "nurture.join.confirm"
TOKEN_MAX = 200


class ClockSigner(TimestampSigner):
    """A TimestampSigner that reads the time from the app's clock."""

    def __init__(self, secret_key: str, *, salt: str, clock: Clock) -> None:
        super().__init__(secret_key, salt=salt)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock().timestamp())


class Refusal(enum.StrEnum):
    HONEYPOT = "honeypot"
    TAMPERED = "tampered"
    TOO_FAST = "too_fast"
    TOO_OLD = "too_old"
    RATE_LIMITED = "rate_limited"


class SignupTokens:
    """Form tokens (served with the form, checked on its POST) and confirmation-link tokens."""

    def __init__(
        self, secret_key: str, clock: Clock, *, min_seconds: float, max_age: int, link_days: int
    ) -> None:
        self._form = ClockSigner(secret_key, salt=FORM, clock=clock)
        self._confirm = ClockSigner(secret_key, salt=CONFIRM, clock=clock)
        self._clock, self.min_seconds, self.max_age = clock, min_seconds, max_age
        self.link_age = link_days * 86400

    def form_token(self) -> str:
        return self._form.sign("join").decode()

    def check_form(self, token: str) -> Refusal | None:
        """None when the form may be taken in, else why it is refused."""
        if not token or len(token) > TOKEN_MAX:
            return Refusal.TAMPERED
        try:
            _, signed_at = self._form.unsign(token, max_age=self.max_age, return_timestamp=True)
        except SignatureExpired:
            return Refusal.TOO_OLD
        except (BadSignature, UnicodeError, ValueError):
            return Refusal.TAMPERED
        if (self._clock() - signed_at).total_seconds() < self.min_seconds:
            return Refusal.TOO_FAST
        return None

    def confirm_token(self, event_id: int) -> str:
        return self._confirm.sign(str(event_id)).decode()

    def read_confirm(self, token: str) -> int | None:
        """The pending sign-up a confirmation link names; None if tampered or expired."""
        if len(token) > TOKEN_MAX:
            return None
        try:
            value = self._confirm.unsign(token, max_age=self.link_age).decode()
        except (BadSignature, UnicodeError, ValueError):
            return None
        return int(value) if value.isdigit() else None


class AddressLimiter:
    """At most `per_hour` attempts per key (an IP, an email, a phone) in any hour."""

    def __init__(self, clock: Clock, per_hour: int) -> None:
        self._clock, self.per_hour = clock, per_hour
        self._seen: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def allow(self, keys: list[str]) -> bool:
        """Count one attempt against every key, unless one of them is over the limit."""
        now = self._clock()
        since = now - timedelta(hours=1)
        with self._lock:
            windows = [self._seen.setdefault(key, deque()) for key in keys]
            for window in windows:
                while window and window[0] <= since:
                    window.popleft()
            if any(len(window) >= self.per_hour for window in windows):
                return False
            for window in windows:
                window.append(now)
            if len(self._seen) > 50_000:  # keys whose windows emptied: drop them
                self._seen = {key: seen for key, seen in self._seen.items() if seen}
            return True
