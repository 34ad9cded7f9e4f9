"""What a webhook delivery says: a small, stable JSON body built from one event.

    {"id": "evt_123", "type": "contact.opted_out", "occurred_at": "2026-12-01T18:00:00Z",
     "contact": {"id": 42, "phone": "+13105550123"},
     "data": {"channel": "sms", "reason": "stop", "campaign_id": 3, "step": 1, "message_id": 9}}

`id` names the event, the same on every attempt and every endpoint, so a receiver drops a
repeat (delivery is at least once: a crash between the receiver's 2xx and our record of it
posts again).

What is left out on purpose: anything that can tell a health condition. No names, tags,
custom fields, campaign names (a sequence may be called after a condition), link
destinations, message or reply text, or the event's own `data` wholesale (an inbound text's
body, the campaigns a booking ended). The contact is named by our id and by the address the
event concerns (the email for an email event, the phone for a text, both for a booking): the
receiver is the clinic's own CRM and needs it to find the person, above all to honour an
opt-out. The address is read at each attempt, so once a person is forgotten it is not sent.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from staff.webhook_endpoints import EVENT_TYPES, TEST_TYPE
from storage.models import Channel, Contact, Event, WebhookDelivery

#: events.kind -> public type (staff.webhook_endpoints.EVENT_TYPES turned around).
PUBLIC_TYPE = {kind: public for public, kind in EVENT_TYPES.items()}
#: A booking's events may say when the visit is (campaigns.booking), which a CRM wants.
BOOKING_KINDS = frozenset({"booked", "cancelled", "no_show", "attended"})


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def body_of(session: Session, delivery: WebhookDelivery, now: datetime) -> bytes:
    """The bytes to post (and sign) for this delivery at this attempt."""
    if delivery.event_id is None:
        payload = _test_payload(delivery, now)
    else:
        event = session.get_one(Event, delivery.event_id)
        payload = event_payload(session, event)
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def _test_payload(delivery: WebhookDelivery, now: datetime) -> dict[str, Any]:
    return {
        "id": f"test_{delivery.id}",
        "type": TEST_TYPE,
        "occurred_at": stamp(delivery.created_at),
        "contact": None,
        "data": {"note": "a test event sent from the Nurture dashboard", "sent_at": stamp(now)},
    }


def event_payload(session: Session, event: Event) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if event.channel:
        data["channel"] = event.channel
    for key, value in (
        ("campaign_id", event.campaign_id),
        ("step", event.step_index),
        ("message_id", event.message_id),
    ):
        if value is not None:
            data[key] = value
    if event.kind == "unsubscribed":
        data["reason"] = str((event.data or {}).get("reason", "unsubscribed"))
    if event.kind == "booked":
        data["first"] = bool((event.data or {}).get("first", False))
    if event.kind in BOOKING_KINDS and (event.data or {}).get("appointment_at"):
        data["appointment_at"] = str(event.data["appointment_at"])
    return {
        "id": f"evt_{event.id}",
        "type": PUBLIC_TYPE.get(event.kind, event.kind),
        "occurred_at": stamp(event.occurred_at),
        "contact": _contact(session, event),
        "data": data,
    }


def _contact(session: Session, event: Event) -> dict[str, Any] | None:
    if event.contact_id is None:
        return None
    row = session.execute(
        select(Contact.email, Contact.phone).where(Contact.id == event.contact_id)
    ).one_or_none()
    named: dict[str, Any] = {"id": event.contact_id}
    if row is None:
        return named
    if event.channel in (None, Channel.EMAIL) and row.email:
        named["email"] = row.email
    if event.channel in (None, Channel.SMS) and row.phone:
        named["phone"] = row.phone
    return named
