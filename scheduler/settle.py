"""Uncertain messages settle themselves from the providers' own evidence.

A worker killed between a provider call and its record leaves the message "uncertain"
(scheduler/claims.py). Neither provider takes an idempotency key, so a blind retry could deliver
twice; but both can tell us what they accepted. This step, run on the worker's clock, asks them
and decides only where the evidence is clear; everything else stays for staff, with the reason.

Texts: Twilio's Messages list for the contact's number, in the send window: from the claim (the
send began after it) minus a margin to the moment it became uncertain (the claim plus the
sending timeout: by then the provider call had ended) plus a margin, both margins for the
clocks' disagreement. A listed text counts as ours only if it came from our sender (the
messaging service or the number in settings), was created in the window and its SID is not
already recorded on another message. Then:
- exactly one: it was sent, with that SID and Twilio's status;
- none: it never left, and is planned again (due now, so consent, suppression, quiet hours and
  the caps are checked again before it goes);
- several, or another uncertain text to the same number and any candidate: left for staff. The
  rendered body is not stored, so two texts of ours cannot be told apart by content, and
  guessing could mark the wrong step sent and re-send one that went;
- the list cannot be read: left for staff (nothing is decided on a failed lookup).
Caveat: Twilio filters on the date a text was *sent*; one still in Twilio's own queue has none
yet. Our pacing keeps that queue short (segments_per_second), and the check runs only after the
sending timeout (five minutes by default), by which time a paced text has long left the queue.

Emails: any SendGrid event recorded for the message (its id travels in custom_args) means
SendGrid accepted it: sent. Without an event, silence is evidence only when the Event Webhook is
configured (its verification key is set and SendGrid sends the mail) and healthy: the last
SendGrid event to arrive happened within `event_webhook_healthy_within_seconds` of now and after
this email's claim, so events from after the send are reaching us. Then no event within
`settle_email_wait_seconds` of the send means SendGrid never had it: planned again. SendGrid
posts `processed` within seconds and retries a failing webhook, so the wait is generous.
Configured but silent: left for staff. Not configured: staff decide, as before.

An event that arrives for an uncertain message through the webhooks settles it at once
(`settle_on_event`, called by scheduler/deliveries.py) by the same rule.

Every decision is an Event (kind `uncertain_settled`, or `uncertain_left` when it could not be
made) whose data holds the decision, the evidence and the rule; the "Needs attention" page
lists them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from core.redact import mask_phone
from core.settings import Settings
from providers.base import FoundMessage, ProviderError, SmsProvider
from providers.events import DeliveryEvent
from scheduler.attention import LEFT_KIND, SETTLED_KIND, left_for_staff, mark_sent, plan_again
from storage.db import transaction
from storage.models import Contact, Event, Message, MessageState

log = logging.getLogger("nurture.settle")

SENT, PLANNED_AGAIN, LEFT = "sent", "planned again", "left for staff"
#: Uncertain messages looked at per run (a crash leaves a few hundred at most).
PER_RUN = 200

ONE_TEXT = "one text from our sender to that number in the send window: it was sent"
NO_TEXT = "no text from our sender to that number in the send window: it never left"
SEVERAL_TEXTS = (
    "more than one text of ours to that number in the window, and bodies are not stored: "
    "which one is this cannot be told"
)
LOOKUP_FAILED = "Twilio's Messages list could not be read"
PROVIDER_EVENT = "the provider reported an event for this message: it has it"
EMAIL_SILENT = (
    "the Event Webhook is healthy and no SendGrid event came for this email within the wait: "
    "SendGrid never had it"
)
WEBHOOK_SILENT = "the Event Webhook sent nothing after this email's send: silence proves nothing"


@dataclass(frozen=True)
class Uncertain:
    id: int
    channel: str
    claimed_at: datetime | None
    address: str | None


@dataclass(frozen=True)
class Decision:
    message_id: int
    decision: str  # SENT, PLANNED_AGAIN or LEFT
    rule: str
    evidence: str
    provider: str = ""
    sid: str = ""
    status: str = ""
    at: datetime | None = None


def checked_automatically(settings: Settings) -> frozenset[str]:
    """The channels whose uncertain messages this step settles (staff see them only once it
    gave up): texts always; emails when the Event Webhook is configured."""
    return frozenset({"sms", "email"} if webhook_configured(settings) else {"sms"})


def webhook_configured(settings: Settings) -> bool:
    return settings.email.provider == "sendgrid" and bool(
        settings.secrets.sendgrid_webhook_public_key
    )


class Settler:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        sms: SmsProvider,
        clock: Clock,
    ) -> None:
        self.settings, self.sessions, self.sms, self.clock = settings, sessions, sms, clock
        scheduler = settings.scheduler
        self.margin = timedelta(seconds=scheduler.settle_window_margin_seconds)
        self.timeout = timedelta(seconds=scheduler.sending_timeout_seconds)
        self.email_wait = timedelta(seconds=scheduler.settle_email_wait_seconds)
        self.healthy_within = timedelta(seconds=scheduler.event_webhook_healthy_within_seconds)
        #: The clock runs this step twice per `settle_uncertain_after_seconds`, so a message is
        #: looked at within that time of becoming uncertain.
        self.interval = max(1.0, scheduler.settle_uncertain_after_seconds / 2)

    def tick(self) -> list[Decision]:
        """Settle what the evidence allows; returns the decisions recorded."""
        now = self.clock()
        with transaction(self.sessions, immediate=False) as session:
            pending = _pending(session)
            emails = [item for item in pending if item.channel == "email"]
            decisions = self._emails(session, emails, now)
        texts = [item for item in pending if item.channel == "sms"]
        if texts:
            decisions += self._texts(texts, now)
        if not decisions:
            return []
        with transaction(self.sessions) as session:
            applied = [item for item in decisions if _apply(session, item, now)]
        for item in applied:
            log.info("uncertain message %d: %s (%s)", item.message_id, item.decision, item.rule)
        return applied

    # -- texts -----------------------------------------------------------------------------------
    def _texts(self, texts: list[Uncertain], now: datetime) -> list[Decision]:
        windows = {item.id: self._window(item, now) for item in texts if item.address}
        found = asyncio.run(self._look_up(texts, windows))
        sids = {message.sid for listed in found.values() if listed for message in listed}
        with transaction(self.sessions, immediate=False) as session:
            known = _recorded_sids(session, sids)
        per_number = Counter(item.address for item in texts)
        decisions = []
        for item in texts:
            if not item.address or item.id not in windows:
                decisions.append(Decision(item.id, LEFT, "no number or claim time", ""))
                continue
            after, before = windows[item.id]
            listed = found[item.id]
            if listed is None:
                decisions.append(Decision(item.id, LEFT, LOOKUP_FAILED, "see the worker's log"))
                continue
            mine = [
                message
                for message in listed
                if self._ours(message, after, before) and known.get(message.sid, item.id) == item.id
            ]
            decisions.append(
                self._text_decision(item, mine, after, before, alone=per_number[item.address] == 1)
            )
        return decisions

    def _window(self, item: Uncertain, now: datetime) -> tuple[datetime, datetime]:
        assert item.claimed_at is not None  # _pending keeps only claimed messages
        became_uncertain = min(now, item.claimed_at + self.timeout)
        return item.claimed_at - self.margin, became_uncertain + self.margin

    async def _look_up(
        self, texts: list[Uncertain], windows: dict[int, tuple[datetime, datetime]]
    ) -> dict[int, list[FoundMessage] | None]:
        """Each text's listed messages, or None when the list could not be read."""
        found: dict[int, list[FoundMessage] | None] = {}
        for item in texts:
            if item.id not in windows or not item.address:
                continue
            try:
                found[item.id] = await self.sms.find_sent(item.address, *windows[item.id])
            except (ProviderError, OSError) as exc:
                log.warning("uncertain text %d: %s: %s", item.id, LOOKUP_FAILED, exc)
                found[item.id] = None
        return found

    def _ours(self, message: FoundMessage, after: datetime, before: datetime) -> bool:
        """Sent by our sender, created in the window (Twilio's date filter may be coarser)."""
        if message.created_at is not None and not after <= message.created_at <= before:
            return False
        service, number = self.settings.sms.messaging_service_sid, self.settings.sms.from_number
        if service:
            return message.messaging_service_sid == service
        return not number or message.from_number == number

    def _text_decision(
        self,
        item: Uncertain,
        mine: list[FoundMessage],
        after: datetime,
        before: datetime,
        *,
        alone: bool,
    ) -> Decision:
        number = mask_phone(item.address)
        window = f"between {_stamp(after)} and {_stamp(before)}"
        if not mine:
            return Decision(item.id, PLANNED_AGAIN, NO_TEXT, f"no text to {number} {window}")
        if len(mine) > 1 or not alone:
            sids = ", ".join(message.sid for message in mine)
            return Decision(item.id, LEFT, SEVERAL_TEXTS, f"{number} {window}: {sids}")
        [message] = mine
        return Decision(
            item.id,
            SENT,
            ONE_TEXT,
            f"Twilio {message.sid} ({message.status}) to {number} {window}",
            provider=self.sms.name,
            sid=message.sid,
            status=message.status,
            at=message.created_at,
        )

    # -- emails ----------------------------------------------------------------------------------
    def _emails(self, session: Session, emails: list[Uncertain], now: datetime) -> list[Decision]:
        if not emails:
            return []
        evidence = _first_events(session, [item.id for item in emails])
        last_event = _last_sendgrid_event(session) if webhook_configured(self.settings) else None
        decisions = []
        for item in emails:
            if item.id in evidence:
                kind, event_id, at = evidence[item.id]
                found = f"SendGrid event {kind} {event_id} at {_stamp(at)}"
                decisions.append(
                    Decision(item.id, SENT, PROVIDER_EVENT, found, provider="sendgrid")
                )
                continue
            claimed = item.claimed_at
            if not webhook_configured(self.settings) or claimed is None:
                continue  # staff decide, as before the webhook
            if now < claimed + self.email_wait:
                continue  # its events may still come
            healthy = (
                last_event is not None
                and last_event >= now - self.healthy_within
                and last_event >= claimed
            )
            last = _stamp(last_event) if last_event else "never"
            if healthy:
                quiet = (
                    f"no SendGrid event for message {item.id} between {_stamp(claimed)} and "
                    f"{_stamp(now)}; the Event Webhook's last event happened at {last}"
                )
                decisions.append(Decision(item.id, PLANNED_AGAIN, EMAIL_SILENT, quiet))
            else:
                silent = f"the Event Webhook's last event happened at {last}"
                decisions.append(Decision(item.id, LEFT, WEBHOOK_SILENT, silent))
        return decisions


def settle_on_event(session: Session, message: Message, event: DeliveryEvent) -> None:
    """A provider event for an uncertain message: the provider has it (the webhooks' path)."""
    if message.state != MessageState.UNCERTAIN:
        return
    found = f"{event.provider} event {event.provider_status or event.event_type} {event.event_id}"
    decision = Decision(
        message.id,
        SENT,
        PROVIDER_EVENT,
        found,
        provider=event.provider,
        sid=event.provider_message_id,
        status=event.provider_status,
        at=event.occurred_at,
    )
    _record(session, message, decision, event.occurred_at)


def _pending(session: Session) -> list[Uncertain]:
    """Uncertain messages the automatic check has not given up on yet."""
    rows = session.execute(
        select(Message.id, Message.channel, Message.claimed_at, Contact.email, Contact.phone)
        .join(Contact, Contact.id == Message.contact_id)
        .where(Message.state == MessageState.UNCERTAIN, Message.claimed_at.is_not(None))
        .order_by(Message.claimed_at, Message.id)
        .limit(PER_RUN)
    ).all()
    left = left_for_staff(session, {row.id: row.claimed_at for row in rows})
    return [
        Uncertain(
            row.id, row.channel, row.claimed_at, row.email if row.channel == "email" else row.phone
        )
        for row in rows
        if row.id not in left
    ]


def _recorded_sids(session: Session, sids: set[str]) -> dict[str, int]:
    """SIDs already recorded on a message: evidence for that message, not another."""
    if not sids:
        return {}
    rows = session.execute(
        select(Message.provider_message_id, Message.id).where(
            Message.provider_message_id.in_(sorted(sids))
        )
    )
    return {sid: message_id for sid, message_id in rows if sid}


def _first_events(session: Session, ids: list[int]) -> dict[int, tuple[str, str, datetime]]:
    """The first SendGrid event recorded for each of these messages (kind, event id, time)."""
    rows = session.execute(
        select(Event.message_id, Event.kind, Event.provider_event_id, Event.occurred_at)
        .where(
            Event.message_id.in_(ids),
            Event.provider == "sendgrid",
            Event.provider_event_id.is_not(None),
        )
        .order_by(Event.id)
    )
    first: dict[int, tuple[str, str, datetime]] = {}
    for message_id, kind, event_id, at in rows:
        if message_id is not None and message_id not in first:
            first[message_id] = (kind, event_id or "", at)
    return first


def _last_sendgrid_event(session: Session) -> datetime | None:
    """When the last SendGrid event to arrive happened (the newest id: arrival order; the
    primary key's index finds it at once)."""
    return session.scalar(
        select(Event.occurred_at)
        .where(Event.provider == "sendgrid", Event.provider_event_id.is_not(None))
        .order_by(Event.id.desc())
        .limit(1)
    )


def _apply(session: Session, decision: Decision, now: datetime) -> bool:
    """Applied only to a message still uncertain (another worker or staff may have settled it
    since it was looked at)."""
    message = session.get(Message, decision.message_id, with_for_update=True)
    if message is None or message.state != MessageState.UNCERTAIN:
        return False
    _record(session, message, decision, now)
    return True


def _record(session: Session, message: Message, decision: Decision, now: datetime) -> None:
    if decision.decision == SENT:
        mark_sent(
            message,
            at=decision.at,
            provider=decision.provider,
            sid=decision.sid,
            status=decision.status,
        )
    elif decision.decision == PLANNED_AGAIN:
        plan_again(message, now=now)
    note = f"{decision.decision} automatically: {decision.rule}"
    message.error = f"{message.error or 'uncertain'}; {note} ({decision.evidence})"
    data = {"decision": decision.decision, "rule": decision.rule, "evidence": decision.evidence}
    if decision.sid:
        data["sid"] = decision.sid
    if decision.status:
        data["status"] = decision.status
    session.add(
        Event(
            kind=LEFT_KIND if decision.decision == LEFT else SETTLED_KIND,
            occurred_at=now,
            message_id=message.id,
            contact_id=message.contact_id,
            campaign_id=message.campaign_id,
            step_index=message.step_index,
            channel=message.channel,
            data=data,
        )
    )


def _stamp(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S}Z"
