"""Outbound webhook endpoints: editors register a URL for the event types it wants, see its
secret once, and deactivate or delete it (scheduler.webhooks delivers to it).

The public event types are a small vocabulary of their own (`contact.opted_out`, not our
internal event kind `unsubscribed`), as django-anymail normalises providers' events: receivers
depend on these names, never on how we store things. Each names the `events` kind it is made
from; only what the events table actually records is offered.

An endpoint gets events that happen after it was registered (`after_event_id`), never the
history. URLs are https without credentials, to a public address: a delivery carries a
person's email or phone, and is posted from inside the clinic's network, where a URL naming
this machine (`http://localhost:6379/`), a private network or the cloud's metadata service
(`169.254.169.254`) would let an editor's URL reach what the internet cannot (SSRF, OWASP).
A host named here is checked again at each post, after its lookup (scheduler.webhooks). Only
`[webhooks] allow_private_addresses`, for tests and local development, allows http and such
addresses.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Address, IPv6Address, IPv6Network, ip_address
from typing import cast
from urllib.parse import urlsplit

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from core.errors import InputError, NotFound
from storage.models import WEBHOOK_TEST_TYPE, Event, WebhookDelivery, WebhookEndpoint

SECRET_PREFIX = "whsec_"
MAX_URL = 2000
#: Public event type -> the `events.kind` it is made from.
EVENT_TYPES: dict[str, str] = {
    "contact.opted_out": "unsubscribed",
    "contact.opted_in": "resubscribed",
    "contact.booked": "booked",
    "contact.cancelled": "cancelled",
    "contact.no_show": "no_show",
    "contact.attended": "attended",
    "message.clicked": "clicked",
    "message.delivered": "delivered",
    "message.bounced": "bounced",
}
TEST_TYPE = WEBHOOK_TEST_TYPE  # what staff's "send a test event" posts (storage.models)
#: RFC 6052's well-known NAT64 prefix: 64:ff9b::7f00:1 reaches 127.0.0.1 through a gateway.
NAT64 = IPv6Network("64:ff9b::/96")
#: Shown in place of a URL's path beyond its first characters and of its query: either may
#: hold the receiver's token, which viewers (and editors, who never need it back) do not see.
SHOWN_PATH = 16


@dataclass(frozen=True)
class NewEndpoint:
    """An endpoint just registered: `secret` is shown to the editor this once."""

    id: int
    url: str
    event_types: list[str]
    secret: str


def check_url(url: str, *, allow_private: bool = False) -> str:
    """The URL as stored, or InputError saying what is wrong with it. `allow_private`: tests and
    local development ([webhooks] allow_private_addresses) may use http and this machine."""
    url = url.strip()
    if not url or len(url) > MAX_URL:
        raise InputError(f"give a URL of 1 to {MAX_URL} characters")
    if not url.isascii() or any(c <= " " or c == "\x7f" for c in url):
        raise InputError("the URL must not contain spaces, control or non-ASCII characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError("the URL must start with https:// and name a host")
    if parts.username is not None or parts.password is not None:
        raise InputError(
            "the URL must not carry a user name or password; the signature is the proof"
        )
    if parts.scheme == "http" and not allow_private:
        raise InputError("use https: deliveries carry people's email addresses and phone numbers")
    try:
        parts.port  # noqa: B018  # raises ValueError for a port out of range
    except ValueError:
        raise InputError("the URL's port is not a number from 1 to 65535") from None
    if not allow_private and not _may_be_public(parts.hostname):
        raise InputError(
            "the URL must name a public address, not this machine or a private network"
        )
    return url


def _may_be_public(host: str) -> bool:
    """False for a name of this machine (RFC 6761 .localhost) or an address that is not public;
    other names are checked after each lookup, when posted."""
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return False
    try:
        return is_public(ip_address(name))
    except ValueError:
        return True


def is_public(address: IPv4Address | IPv6Address) -> bool:
    """Whether a post may go to this address: not loopback, private, link-local (the cloud's
    metadata service), multicast, reserved or unspecified; an IPv4 address inside an IPv6 one
    (mapped ::ffff:127.0.0.1, 6to4 2002:7f00:1::, NAT64 64:ff9b::7f00:1) is judged as itself."""
    if isinstance(address, IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if address in NAT64:  # a NAT64 gateway would connect to the IPv4 address inside
            embedded = IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            address = embedded
    return address.is_global and not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def shown_url(url: str) -> str:
    """What the dashboard shows of an endpoint's URL: scheme, host and port, the path's first
    characters; the query masked. A token in the path or query stays with whoever registered."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if len(path) > SHOWN_PATH:
        path = path[:SHOWN_PATH] + "…"
    host = parts.netloc.rpartition("@")[2]  # never a user name or password
    return f"{parts.scheme}://{host}{path}" + ("?…" if parts.query else "")


def register(
    session: Session,
    *,
    url: str,
    event_types: list[str],
    created_by: str,
    at: datetime,
    allow_private: bool = False,
) -> NewEndpoint:
    url = check_url(url, allow_private=allow_private)
    wanted = sorted(set(event_types))
    unknown = [kind for kind in wanted if kind not in EVENT_TYPES]
    if unknown:
        raise InputError(f"unknown event type {unknown[0]!r}; choose from {', '.join(EVENT_TYPES)}")
    if not wanted:
        raise InputError("choose at least one event type")
    newest = session.scalar(select(func.coalesce(func.max(Event.id), 0))) or 0
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    row = WebhookEndpoint(
        url=url,
        event_types=wanted,
        secret=secret,
        secret_prefix=secret[:12],
        active=True,
        created_by=created_by,
        created_at=at,
        after_event_id=newest,
        cursor_event_id=newest,
    )
    session.add(row)
    session.flush()
    return NewEndpoint(row.id, url, wanted, secret)


def _endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    row = session.get(WebhookEndpoint, endpoint_id)
    if row is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    return row


def deactivate(session: Session, endpoint_id: int, *, at: datetime) -> bool:
    """Stop delivering to it; False if already off. Deliveries still waiting are given up now
    (kept, with why, for the record): an endpoint is never switched on again (registering makes
    a new one), and left due they would be walked by every claim for as long as they stay."""
    row = _endpoint(session, endpoint_id)
    was = row.active
    row.active = False
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == row.id, WebhookDelivery.next_attempt_at.is_not(None))
        .values(next_attempt_at=None, gave_up_at=at, last_error="endpoint deactivated")
    )
    return was


def delete(session: Session, endpoint_id: int) -> None:
    """Remove it and its deliveries (the foreign key cascades)."""
    session.delete(_endpoint(session, endpoint_id))
    session.flush()


def queue_test(session: Session, endpoint_id: int, *, at: datetime) -> int:
    """A `webhook.test` delivery, due now: the deliverer posts it within seconds."""
    row = _endpoint(session, endpoint_id)
    if not row.active:
        raise InputError("this endpoint is deactivated; register it again to use it")
    delivery = WebhookDelivery(
        endpoint_id=row.id, event_id=None, event_type=TEST_TYPE, created_at=at, next_attempt_at=at
    )
    session.add(delivery)
    session.flush()
    return delivery.id


def list_endpoints(session: Session) -> list[WebhookEndpoint]:
    return list(
        session.scalars(
            select(WebhookEndpoint).order_by(WebhookEndpoint.active.desc(), WebhookEndpoint.id)
        )
    )


def delivery_counts(session: Session) -> dict[int, dict[str, int]]:
    """Per endpoint: deliveries waiting (to be tried or retried), delivered and given up."""
    outcome = case(
        (WebhookDelivery.delivered_at.is_not(None), "delivered"),
        (WebhookDelivery.gave_up_at.is_not(None), "given up"),
        else_="waiting",
    )
    counts: dict[int, dict[str, int]] = {}
    rows = session.execute(
        select(WebhookDelivery.endpoint_id, outcome, func.count()).group_by(
            WebhookDelivery.endpoint_id, outcome
        )
    )
    for endpoint_id, state, count in cast("list[tuple[int, str, int]]", rows.all()):
        counts.setdefault(endpoint_id, {"waiting": 0, "delivered": 0, "given up": 0})[state] = count
    return counts


def recent_deliveries(session: Session, limit: int = 30) -> list[WebhookDelivery]:
    return list(
        session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit))
    )
