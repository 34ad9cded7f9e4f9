"""A staff member's answer to a contact's text: sent through the app's SMS channel like any
text, under the same rules as the engine's texts, and recorded.

The rules are the engine's own, called, not copied: consent in the ledger's current status
(ConsentStatus.OPTED_IN), the suppression list (contacts.suppressions.is_suppressed), and TCPA
quiet hours narrowed by the number's state rule (scheduler.windows with the planner's
quiet_hours). Outside the allowed hours an answer is refused, not queued: a person writing "see
you Monday" at 22:30 should decide again in the morning, not have it leave on its own. The
record is an event `staff_reply` naming who sent it; the body is kept in the event (the inbox
shows the conversation, and contacts.forget blanks it with the contact's other events), never
in a log line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from campaigns.definitions import SendWindow
from contacts.state_rules import rule_for
from contacts.suppressions import is_suppressed
from core.errors import InputError, NotFound
from core.redact import mask_phone
from core.settings import Settings
from providers.base import OutgoingSms, SendResult
from scheduler.planner import quiet_hours
from scheduler.windows import next_allowed, texting_hours
from storage.models import Channel, ConsentStatus, Contact, Event
from templates.sms_segments import sms_info

log = logging.getLogger("nurture.scheduler.staff_replies")
STAFF_REPLY = "staff_reply"
MAX_LENGTH = 640  # four GSM-7 segments: an answer, not a newsletter
#: Every hour of every day: only quiet hours (and the state's) limit a person's answer.
ANY_TIME = SendWindow()


@dataclass(frozen=True)
class Answer:
    """An answer that passed the rules, ready for the channel."""

    contact_id: int
    sms: OutgoingSms


def prepare_answer(
    session: Session, settings: Settings, contact_id: int, body: str, *, now: datetime
) -> Answer:
    """The answer to send now, or InputError saying which rule refuses it."""
    text = body.strip()
    if not text:
        raise InputError("Write an answer first.")
    if len(text) > MAX_LENGTH:
        raise InputError(f"An answer is {MAX_LENGTH} characters at most.")
    contact = session.get(Contact, contact_id)
    if contact is None or contact.erased_at is not None:
        raise NotFound(f"no contact {contact_id}")
    if not contact.phone:
        raise InputError("This contact has no phone number on file.")
    if contact.sms_consent != ConsentStatus.OPTED_IN:
        raise InputError("Not sent: this contact has not consented to texts (or withdrew).")
    refused = texting_refusal(session, settings, contact.phone, contact.timezone, now=now)
    if refused is not None:
        raise InputError(f"Not sent: {refused}. Nothing was queued: send it again later.")
    sms = OutgoingSms(
        message_id=0,  # not a sequence's message: no row, no status callback to match
        to=contact.phone,
        body=text,
        from_number=settings.sms.from_number,
        messaging_service_sid=settings.sms.messaging_service_sid,
        segments=sms_info(text).segments,
    )
    return Answer(contact.id, sms)


def texting_refusal(
    session: Session,
    settings: Settings,
    phone: str,
    zone: str,
    *,
    now: datetime,
    whose: str = "the contact's",
) -> str | None:
    """Why a text a person sends by hand to `phone` may not go now, or None: the number is
    suppressed, or it is outside TCPA quiet hours (narrowed by the number's state rule) in
    `zone`. A staff answer and the editor's test text both ask here; the engine's texts are
    checked by scheduler.checks with the same suppression list and windows."""
    if is_suppressed(session, Channel.SMS, phone):
        return "this number is opted out of texts (suppressed)"
    hours = texting_hours(quiet_hours(settings), rule_for(phone))
    earliest = next_allowed(now, zone, ANY_TIME, hours)
    if earliest is None or earliest > now:
        opens = f"{hours.allowed_from:%H:%M}-{hours.allowed_until:%H:%M}"
        return f"it is outside texting hours ({opens} in {whose} time zone, {zone})"
    return None


def record_answer(
    session: Session, answer: Answer, result: SendResult, *, by: str, at: datetime
) -> None:
    """The event `staff_reply`: who answered, through which provider, and what was said."""
    session.add(
        Event(
            kind=STAFF_REPLY,
            occurred_at=at,
            contact_id=answer.contact_id,
            channel=str(Channel.SMS),
            provider=result.provider[:20],
            data={
                "by": by,
                "body": answer.sms.body,
                "to": mask_phone(answer.sms.to),
                "provider_message_id": result.provider_message_id,
                "segments": answer.sms.segments,
            },
        )
    )
    session.flush()
    log.info("staff answer to %s sent and recorded", mask_phone(answer.sms.to))
