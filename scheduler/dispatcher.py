"""The dispatcher: claim → re-check → render → mark sending → send → record.

Every rule is checked again at send time, because anything may have changed since planning: a
suppression, consent, a booking, a paused campaign, the clock (a late tick must not text at
23:00). A message is marked "sending" in a committed transaction before the provider call and
"sent" with the provider's id after it, so a crash in between leaves it "sending", which recovery
turns into "uncertain" instead of sending it again.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from campaigns.compose import Composer
from campaigns.definitions import Sequence
from campaigns.enrollment import exit_enrollment
from contacts.suppressions import is_suppressed, suppress
from nurture.clock import Clock, utcnow
from nurture.db import transaction
from nurture.models import (
    Campaign,
    CampaignState,
    Contact,
    Enrollment,
    EnrollmentState,
    Message,
    MessageState,
    SuppressionReason,
)
from nurture.settings import Settings
from providers.base import (
    EmailChannel,
    OutgoingEmail,
    OutgoingSms,
    ProviderRejected,
    ProviderUnavailable,
    SendResult,
    SmsChannel,
)
from scheduler.claims import claim_due, recover_stale, release_worker
from scheduler.exits import exit_reason, reachable
from scheduler.planner import quiet_hours
from scheduler.retry import backoff
from scheduler.windows import next_allowed
from templates.renderer import RenderedEmail, TemplateRenderError

log = logging.getLogger("nurture.dispatch")

IN_FLIGHT_OR_SENT = (
    MessageState.SENDING,
    MessageState.SENT,
    MessageState.DELIVERED,
    MessageState.UNCERTAIN,
)


def worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass
class DispatchResult:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    deferred: int = 0
    retried: int = 0
    released: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str, reason: str | None = None) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        if reason:
            self.reasons[reason] = self.reasons.get(reason, 0) + 1


@dataclass
class Outgoing:
    message_id: int
    payload: OutgoingEmail | OutgoingSms


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        composer: Composer,
        email: EmailChannel,
        sms: SmsChannel,
        clock: Clock = utcnow,
        worker: str | None = None,
    ) -> None:
        self.settings, self.sessions, self.composer = settings, sessions, composer
        self.email, self.sms, self.clock = email, sms, clock
        self.worker = worker or worker_id()
        self.quiet = quiet_hours(settings)
        self.cap = timedelta(hours=settings.scheduler.sms_frequency_cap_hours)

    # -- the loop -------------------------------------------------------------------------------
    def tick(self) -> DispatchResult:
        """Dispatch batches until nothing is due."""
        total = DispatchResult()
        while True:
            result = self.dispatch_batch()
            for name in ("claimed", "sent", "failed", "skipped", "deferred", "retried", "released"):
                setattr(total, name, getattr(total, name) + getattr(result, name))
            for reason, count in result.reasons.items():
                total.reasons[reason] = total.reasons.get(reason, 0) + count
            if result.claimed < self.settings.scheduler.batch_size:
                return total

    def dispatch_batch(self) -> DispatchResult:
        result = DispatchResult()
        now = self.clock()
        with transaction(self.sessions, immediate=True) as session:
            ids = claim_due(
                session, now=now, limit=self.settings.scheduler.batch_size, worker=self.worker
            )
        result.claimed = len(ids)
        if not ids:
            return result
        with transaction(self.sessions, immediate=True) as session:
            outgoing = self._prepare(session, ids, now, result)
        for item in outgoing:
            self._send_one(item, result)
        return result

    def recover(self) -> tuple[int, int]:
        timeout = timedelta(seconds=self.settings.scheduler.sending_timeout_seconds)
        with transaction(self.sessions, immediate=True) as session:
            replanned, uncertain = recover_stale(session, now=self.clock(), sending_timeout=timeout)
        if uncertain:
            log.warning(
                "%d message(s) left in flight by a stopped worker are now uncertain", uncertain
            )
        return replanned, uncertain

    def shutdown(self) -> int:
        with transaction(self.sessions, immediate=True) as session:
            return release_worker(session, self.worker)

    # -- checks, rendering and the "sending" mark (one transaction) ------------------------------
    def _prepare(
        self, session: Session, ids: list[int], now: datetime, result: DispatchResult
    ) -> list[Outgoing]:
        messages = list(
            session.scalars(select(Message).where(Message.id.in_(ids)).order_by(Message.id))
        )
        campaigns: dict[int, Campaign] = {}
        sequences: dict[int, Sequence] = {}
        texted: set[int] = set()
        outgoing: list[Outgoing] = []
        for message in messages:
            if message.state != MessageState.CLAIMED or message.claimed_by != self.worker:
                continue
            campaign = campaigns.get(message.campaign_id) or session.get_one(
                Campaign, message.campaign_id
            )
            campaigns[campaign.id] = campaign
            if campaign.id not in sequences:
                sequences[campaign.id] = Sequence.from_snapshot(campaign.definition)
            item = self._check_and_render(
                session, message, campaign, sequences[campaign.id], now, texted, result
            )
            if item is not None:
                message.state = MessageState.SENDING
                message.attempts += 1
                message.claimed_at = now
                outgoing.append(item)
        return outgoing

    def _check_and_render(
        self,
        session: Session,
        message: Message,
        campaign: Campaign,
        sequence: Sequence,
        now: datetime,
        texted: set[int],
        result: DispatchResult,
    ) -> Outgoing | None:
        if campaign.state == CampaignState.PAUSED:
            return self._release(message, result)
        if campaign.state == CampaignState.CANCELLED:
            return self._skip(message, "campaign cancelled", result)
        enrollment = session.get_one(Enrollment, message.enrollment_id)
        contact = session.get_one(Contact, message.contact_id)
        if enrollment.state == EnrollmentState.EXITED:
            return self._skip(message, f"exited: {enrollment.exit_reason}", result)
        reason = exit_reason(session, contact, sequence)
        if reason is not None:
            exit_enrollment(enrollment, reason, now)
            return self._skip(message, f"exited: {reason}", result)
        if message.not_after is not None and now > message.not_after:
            return self._skip(message, "too late: past the step's maximum lateness", result)
        step = sequence.steps[message.step_index]
        address = contact.address(step.channel)
        if not reachable(session, contact, step.channel) or address is None:
            return self._skip(message, f"no {step.channel} consent or suppressed", result)
        quiet = self.quiet if step.channel == "sms" else None
        earliest = next_allowed(now, contact.timezone, step.window, quiet)
        if step.channel == "sms":
            earliest = self._after_frequency_cap(session, contact.id, earliest, texted)
        if earliest is None:
            return self._skip(message, "no allowed send time left", result)
        if earliest > now:
            return self._defer(message, earliest, result)
        try:
            rendered = self.composer.render(sequence, step, contact, message.id, contact.id)
        except TemplateRenderError as exc:
            return self._fail(message, f"template: {exc}", result)
        if isinstance(rendered, RenderedEmail):
            payload: OutgoingEmail | OutgoingSms = self.composer.email(
                rendered,
                message_id=message.id,
                contact_id=contact.id,
                to=address,
                campaign=campaign.name,
            )
        else:
            texted.add(contact.id)
            message.segments = rendered.info.segments
            payload = self.composer.sms(rendered, message_id=message.id, to=address)
        return Outgoing(message.id, payload)

    def _after_frequency_cap(
        self, session: Session, contact_id: int, earliest: datetime | None, texted: set[int]
    ) -> datetime | None:
        """One marketing text per contact per cap window, across every campaign."""
        if earliest is None or not self.cap:
            return earliest
        if contact_id in texted:
            return earliest + self.cap
        last = session.scalar(
            select(func.max(Message.claimed_at)).where(
                Message.contact_id == contact_id,
                Message.channel == "sms",
                Message.state.in_([str(state) for state in IN_FLIGHT_OR_SENT]),
            )
        )
        if last is not None and last + self.cap > earliest:
            return last + self.cap
        return earliest

    # -- outcomes ---------------------------------------------------------------------------------
    @staticmethod
    def _release(message: Message, result: DispatchResult) -> None:
        message.state, message.claimed_by, message.claimed_at = MessageState.PLANNED, None, None
        result.count("released")

    @staticmethod
    def _skip(message: Message, reason: str, result: DispatchResult) -> None:
        message.state, message.skip_reason = MessageState.SKIPPED, reason
        result.count("skipped", reason)

    @staticmethod
    def _fail(message: Message, reason: str, result: DispatchResult) -> None:
        message.state, message.error = MessageState.FAILED, reason
        result.count("failed", reason)

    @staticmethod
    def _defer(message: Message, until: datetime, result: DispatchResult) -> None:
        message.state, message.due_at = MessageState.PLANNED, until
        message.claimed_by = message.claimed_at = None
        result.count("deferred")

    # -- the provider call and its record -------------------------------------------------------
    def _send_one(self, item: Outgoing, result: DispatchResult) -> None:
        # A suppression committed while this batch was being prepared wins (unsubscribe at once).
        with transaction(self.sessions) as session:
            if is_suppressed(session, _channel(item.payload), item.payload.to):
                message = session.get_one(Message, item.message_id)
                message.state, message.skip_reason = MessageState.SKIPPED, "suppressed before send"
                result.count("skipped", "suppressed before send")
                return
        try:
            outcome: SendResult | Exception = self._call_provider(item.payload)
        except (ProviderRejected, ProviderUnavailable) as exc:
            outcome = exc
        with transaction(self.sessions) as session:
            self._record(session, session.get_one(Message, item.message_id), item, outcome, result)

    def _call_provider(self, payload: OutgoingEmail | OutgoingSms) -> SendResult:
        if isinstance(payload, OutgoingEmail):
            return self.email.send_email(payload)
        return self.sms.send_sms(payload)

    def _record(
        self,
        session: Session,
        message: Message,
        item: Outgoing,
        outcome: SendResult | Exception,
        result: DispatchResult,
    ) -> None:
        now = self.clock()
        if isinstance(outcome, SendResult):
            message.state, message.sent_at = MessageState.SENT, now
            message.provider, message.provider_message_id = (
                outcome.provider,
                outcome.provider_message_id,
            )
            message.provider_status, message.error = outcome.status, None
            result.count("sent")
        elif isinstance(outcome, ProviderRejected):
            message.state, message.provider = MessageState.FAILED, outcome.provider
            message.error = str(outcome)
            if outcome.suppress:
                suppress(
                    session,
                    message.channel,
                    item.payload.to,
                    SuppressionReason.STOP,
                    source=f"{outcome.provider} error {outcome.code}",
                )
            result.count("failed", outcome.reason)
        elif isinstance(outcome, ProviderUnavailable):
            message.error = str(outcome)
            if message.attempts >= self.settings.scheduler.max_attempts:
                message.state = MessageState.FAILED
                message.error = f"gave up after {message.attempts} attempts: {outcome}"
                result.count("failed", "provider unavailable")
            else:
                delay = backoff(message.attempts, self.settings.scheduler.retry_base_seconds)
                if outcome.retry_after:
                    delay = max(delay, timedelta(seconds=outcome.retry_after))
                message.state, message.due_at = MessageState.PLANNED, now + delay
                message.claimed_by = message.claimed_at = None
                result.count("retried")


def _channel(payload: OutgoingEmail | OutgoingSms) -> str:
    return "email" if isinstance(payload, OutgoingEmail) else "sms"
