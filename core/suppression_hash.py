"""The keyed hash that stands for an address on the suppression list.

A forgotten person must stay unsubscribed (CCPA lets us keep what is needed to honour an opt-out,
and TCPA/CAN-SPAM forbid texting or mailing them again), so the suppression list keeps a hash of
the address after the address itself is erased. A plain SHA-256 is no protection there: a US
phone number has about 10^10 candidates, a few minutes of brute force. HMAC-SHA256 with a key
derived from the server's secret makes the stored value useless without that key.

The key is derived for this one purpose (HMAC(secret, PURPOSE)), never the raw secret that also
signs links and staff sessions, so one use's key reveals nothing about another's. The HMAC is
computed over the old digest, sha256("channel:address"), which lets migration 0005 convert every
stored hash in place without knowing a single address. The old digest still covers the channel,
so a hash alone names one (channel, address).
"""

from __future__ import annotations

import hashlib
import hmac

#: What the derived key is for; changing it changes every stored hash (a migration, then).
PURPOSE = b"nurture suppression-hash v1"
#: Where sessions (SQLAlchemy's Session.info) and migrations (Alembic's Config.attributes) find
#: the hasher; storage.db puts it in both.
HASHER_KEY = "suppression_hasher"


def plain_digest(channel: str, address: str) -> str:
    """The unkeyed SHA-256 stored before migration 0005, and the HMAC's input since."""
    return hashlib.sha256(f"{channel}:{address.strip().lower()}".encode()).hexdigest()


class SuppressionHasher:
    """HMAC-SHA256 of an address's plain digest under a purpose-derived key.

    The HMAC object is keyed once; each hash copies it (hmac's public `copy()`), which skips
    re-deriving the inner and outer pads per row: imports hash every row on worker processes.
    Pickling sends the derived key (never the secret) to those workers.
    """

    __slots__ = ("_key", "_keyed")

    def __init__(self, derived_key: bytes) -> None:
        if len(derived_key) < 16:
            raise ValueError("a suppression hash key must have at least 16 bytes")
        self._key = derived_key
        self._keyed = hmac.new(derived_key, digestmod=hashlib.sha256)

    @classmethod
    def from_secret(cls, secret: str) -> SuppressionHasher:
        if not secret:
            raise ValueError("the suppression hash needs the server's secret key")
        return cls(hmac.new(secret.encode(), PURPOSE, hashlib.sha256).digest())

    def __call__(self, channel: str, address: str) -> str:
        """The stored key for one (channel, address): 64 hex characters, as before."""
        return self.rekey(plain_digest(str(channel), address))

    def rekey(self, digest: str) -> str:
        """The keyed hash of a plain digest (migration 0005 converts stored rows with it)."""
        mac = self._keyed.copy()
        mac.update(digest.encode("ascii"))
        return mac.hexdigest()

    def __reduce__(self) -> tuple[type[SuppressionHasher], tuple[bytes]]:
        return SuppressionHasher, (self._key,)

    def __repr__(self) -> str:  # never print a key, even in a traceback
        return "SuppressionHasher(<key hidden>)"
