"""The webhook signature, one recipe both ways: the booking system signs what it posts to us
(web.webhooks.booking) and we sign what we post to the clinic's endpoints (scheduler.webhooks).

    X-Nurture-Signature: t=<unix seconds>,sha256=<hex>
    <hex> = HMAC-SHA256(key=secret, msg=b"<t>." + raw request body)

Stripe's scheme: the time is inside the signed bytes, so a receiver that also checks `t` is
recent cannot be fooled by a captured request replayed later.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Nurture-Signature"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The header value for `body` at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},sha256={digest.hexdigest()}"
