"""Signed, unguessable tokens for tracked links, unsubscribe and preference pages.

A token names only ids (a message and a registered destination key, or a contact and a channel):
never a URL, so a link cannot be turned into an open redirect (listmonk registers links the same
way). Signing uses itsdangerous with one salt per purpose, so a click token is no unsubscribe token.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner
from itsdangerous.encoding import base64_encode, want_bytes

from core.errors import ConfigError
from storage.models import Channel

CLICK, UNSUBSCRIBE, PREFERENCES = "click", "unsubscribe", "preferences"
_CHANNEL_CODES = {"e": Channel.EMAIL, "s": Channel.SMS}


class InvalidToken(Exception):
    """Tampered, unknown, malformed or expired."""


@dataclass(frozen=True)
class ClickToken:
    message_id: int
    destination: str


@dataclass(frozen=True)
class ContactToken:
    contact_id: int
    channel: Channel | None


class KeyedSigner(TimestampSigner):
    """itsdangerous's TimestampSigner, keyed once: the stock signer derives its key and starts a
    new HMAC on every call, which was most of the cost of the three links in each message. The
    tokens are byte-for-byte the stock signer's, so links already sent keep working."""

    def __init__(self, secret_key: str, salt: str) -> None:
        super().__init__(secret_key, salt=salt)
        derive = super().derive_key
        self._keys = {key: derive(key) for key in self.secret_keys}
        self._mac = hmac.new(self._keys[self.secret_keys[-1]], digestmod=self.digest_method)

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        key = self.secret_keys[-1] if secret_key is None else want_bytes(secret_key)
        return self._keys.get(key) or super().derive_key(key)

    def get_signature(self, value: str | bytes) -> bytes:
        mac = self._mac.copy()
        mac.update(want_bytes(value))
        return base64_encode(mac.digest())


class LinkSigner:
    def __init__(self, secret_key: str, public_base_url: str, ttl_days: int) -> None:
        if len(secret_key) < 16:
            raise ConfigError("NURTURE_SECRET_KEY must be set to at least 16 characters")
        self._signers = {
            purpose: KeyedSigner(secret_key, salt=f"nurture.{purpose}")
            for purpose in (CLICK, UNSUBSCRIBE, PREFERENCES)
        }
        self.base = public_base_url.rstrip("/")
        self.max_age = ttl_days * 86400

    def _sign(self, purpose: str, value: str) -> str:
        return self._signers[purpose].sign(value).decode()

    def _unsign(self, purpose: str, token: str) -> str:
        try:
            raw = self._signers[purpose].unsign(token, max_age=self.max_age)
        except SignatureExpired as exc:
            raise InvalidToken("expired") from exc
        except (BadSignature, UnicodeError, ValueError) as exc:
            raise InvalidToken("bad signature") from exc
        return raw.decode()

    def click_url(self, message_id: int, destination: str) -> str:
        return f"{self.base}/l/{self._sign(CLICK, f'{message_id}~{destination}')}"

    def unsubscribe_url(self, contact_id: int, channel: Channel | str) -> str:
        code = "e" if channel == Channel.EMAIL else "s"
        return f"{self.base}/u/{self._sign(UNSUBSCRIBE, f'{contact_id}~{code}')}"

    def preferences_url(self, contact_id: int) -> str:
        return f"{self.base}/p/{self._sign(PREFERENCES, str(contact_id))}"

    def read_click(self, token: str) -> ClickToken:
        message_id, _, destination = self._unsign(CLICK, token).partition("~")
        if not message_id.isdigit() or not destination:
            raise InvalidToken("malformed")
        return ClickToken(int(message_id), destination)

    def read_unsubscribe(self, token: str) -> ContactToken:
        contact_id, _, code = self._unsign(UNSUBSCRIBE, token).partition("~")
        if not contact_id.isdigit() or code not in _CHANNEL_CODES:
            raise InvalidToken("malformed")
        return ContactToken(int(contact_id), _CHANNEL_CODES[code])

    def read_preferences(self, token: str) -> ContactToken:
        contact_id = self._unsign(PREFERENCES, token)
        if not contact_id.isdigit():
            raise InvalidToken("malformed")
        return ContactToken(int(contact_id), None)
