"""A quick accept-only check of link tokens, for the two hot paths.

itsdangerous re-derives its key and decodes the signature on every `unsign`, which costs more
than the rest of a click. Tokens are itsdangerous `TimestampSigner` values
(`payload.timestamp.signature`, HMAC-SHA1 under sha1(salt + b"signer" + secret), the library's
defaults), so this reader derives the key once and compares the expected signature, as text, in
constant time. It only ever *accepts*: anything it cannot confirm (a bad or differently encoded
signature, an expired or future timestamp) returns None and the caller asks itsdangerous through
templates.links, which decides and explains. At start-up it checks itself against a token the
real signer made; if they disagree (the signing scheme changed) it switches itself off.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import time

log = logging.getLogger("nurture.web.tokens")


class FastTokenReader:
    def __init__(self, secret_key: str, purpose: str, max_age: int) -> None:
        salt = f"nurture.{purpose}".encode()
        self._key = hashlib.sha1(salt + b"signer" + secret_key.encode()).digest()
        self.max_age = max_age
        self.enabled = True

    def check_against(self, sample_token: str, payload: str) -> None:
        """Switch off unless a token from the real signer reads back as `payload`."""
        if self.payload(sample_token) != payload:
            self.enabled = False
            log.warning("fast token check disagrees with the signer; using itsdangerous only")

    def payload(self, token: str) -> str | None:
        """The signed payload if the token is certainly valid and fresh, else None."""
        if not self.enabled or not token.isascii():
            return None
        signed, _, signature = token.rpartition(".")
        value, _, stamp = signed.rpartition(".")
        if not value or not stamp:
            return None
        expected = base64.urlsafe_b64encode(hmac.digest(self._key, signed.encode(), "sha1"))
        if not hmac.compare_digest(expected.rstrip(b"="), signature.encode()):
            return None
        try:
            signed_at = int.from_bytes(base64.urlsafe_b64decode(stamp + "=" * (-len(stamp) % 4)))
        except (binascii.Error, ValueError):
            return None
        age = int(time.time()) - signed_at
        return value if 0 <= age <= self.max_age else None
