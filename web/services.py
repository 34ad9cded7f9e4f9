"""What the web layer needs from the process it runs in, and nothing more.

The app shell (`nurture.app.NurtureApp`) satisfies this protocol; tests can hand in anything
else that does. Keeping it small keeps `web/` below the shell in the layers import-linter checks.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from campaigns.compose import Composer
from core.clock import Clock
from core.settings import Settings
from providers.base import EmailProvider, SmsProvider
from templates.links import LinkSigner


class WebServices(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def clock(self) -> Clock:
        """The app's one clock: every "now" the web layer records comes from here."""
        ...

    @property
    def engine(self) -> Engine: ...

    @property
    def sessions(self) -> sessionmaker[Session]: ...

    @property
    def secret_key(self) -> str:
        """The key that signs links and staff sessions (see nurture.app.resolve_secret_key)."""
        ...

    @property
    def signer(self) -> LinkSigner: ...

    @property
    def composer(self) -> Composer: ...

    def direct_email(self) -> EmailProvider:
        """The configured email channel, for a message the web server sends itself (a sign-up's
        confirmation); the caller closes it after use."""
        ...

    def direct_sms(self) -> SmsProvider:
        """The configured SMS channel, for a text the web server sends itself (a staff answer,
        a sign-up's "Reply YES"); the caller closes it after use."""
        ...
