"""The tables: the only state shared between workers and the web server.

One row per (enrollment, step) in `messages` is what makes delivery exactly-once: the dispatcher
marks it sending before the provider call and sent after, never keeping a cursor (listmonk #3022).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from core.clock import utcnow


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC, on SQLite and PostgreSQL alike."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored; use aware UTC times")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[str]: JSON,
    }


class Channel(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"


class ConsentStatus(enum.StrEnum):
    OPTED_IN = "opted_in"
    OPTED_OUT = "opted_out"


class SuppressionReason(enum.StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    STOP = "stop"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    UNREACHABLE = "unreachable"
    MANUAL = "manual"
    FORGOTTEN = "forgotten"


class CampaignState(enum.StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    CANCELLED = "cancelled"


class EnrollmentState(enum.StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    EXITED = "exited"
    #: The contact texted something that was not a keyword: a person answers before the
    #: sequence goes on (resumed to active, or ended as exited, from the inbox).
    PAUSED = "paused"


#: Enrollments still in their sequence (running, or paused for a person's answer): a booking,
#: a forget or an exit rule ends them, and reports count them as in progress.
IN_SEQUENCE = (EnrollmentState.ACTIVE, EnrollmentState.PAUSED)


class MessageState(enum.StrEnum):
    PLANNED = "planned"  # due at due_at (moved later by a retryable error or a window)
    CLAIMED = "claimed"  # taken by a worker for checks; never handed to a provider yet
    SENDING = "sending"  # claimed and handed to a provider; outcome not yet recorded
    SENT = "sent"  # the provider accepted it (provider_message_id set)
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"  # permanent error, with error text; never retried
    SKIPPED = "skipped"  # not sent on purpose, with skip_reason
    UNCERTAIN = "uncertain"  # a crash between "sending" and the outcome; never blindly re-sent


#: States after which the next step may be planned.
SETTLED_STATES = frozenset(
    {
        MessageState.SENT,
        MessageState.DELIVERED,
        MessageState.UNDELIVERED,
        MessageState.FAILED,
        MessageState.SKIPPED,
        MessageState.UNCERTAIN,
    }
)


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    phone: Mapped[str | None] = mapped_column(String(20), unique=True)
    timezone: Mapped[str] = mapped_column(String(64))
    # Current consent per channel, derived from the ledger by contacts.consent.record_consent in the
    # same transaction, so audiences and sends need no scan of the ledger.
    email_consent: Mapped[str | None] = mapped_column(String(20))
    sms_consent: Mapped[str | None] = mapped_column(String(20))
    custom_fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The language messages and pages are written in for this person (core.languages; "en"
    # unless an import, the preference page or a Spanish keyword text said otherwise).
    language: Mapped[str] = mapped_column(String(8), default="en", server_default="en")
    source: Mapped[str] = mapped_column(String(100), default="")
    booked_at: Mapped[datetime | None]
    erased_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    consent_events: Mapped[list[ConsentEvent]] = relationship(
        back_populates="contact", order_by="ConsentEvent.id"
    )
    tag_rows: Mapped[list[ContactTag]] = relationship(
        cascade="all, delete-orphan", order_by="ContactTag.tag", lazy="selectin"
    )

    @property
    def tags(self) -> list[str]:
        return [row.tag for row in self.tag_rows]

    def add_tags(self, tags: list[str]) -> bool:
        """Add tags not yet present; True when anything changed (an import never removes one)."""
        have = set(self.tags)
        new = [tag for tag in dict.fromkeys(tags) if tag and tag not in have]
        self.tag_rows.extend(ContactTag(tag=tag) for tag in new)
        return bool(new)

    def consent_for(self, channel: Channel | str) -> str | None:
        return self.email_consent if channel == Channel.EMAIL else self.sms_consent

    def address(self, channel: Channel | str) -> str | None:
        return self.email if channel == Channel.EMAIL else self.phone


class ContactTag(Base):
    __tablename__ = "contact_tags"
    __table_args__ = (Index("ix_contact_tag_tag", "tag", "contact_id"),)

    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)


class ConsentEvent(Base):
    """Append-only consent ledger; a contact's current consent per channel is its latest event."""

    __tablename__ = "consent_events"
    __table_args__ = (Index("ix_consent_contact_channel", "contact_id", "channel", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(100), default="")
    evidence: Mapped[str] = mapped_column(Text, default="")
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)

    contact: Mapped[Contact] = relationship(back_populates="consent_events")


class Suppression(Base):
    """Keyed by a hash of the address, so `forget` can erase the address and keep the block."""

    __tablename__ = "suppressions"
    __table_args__ = (
        UniqueConstraint("channel", "address_hash", name="uq_suppression_address"),
        # The send-time checks look addresses up by hash alone (it covers the channel).
        Index("ix_suppression_address_hash", "address_hash"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(10))
    address_hash: Mapped[str] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    lifted_at: Mapped[datetime | None]
    lifted_by: Mapped[str | None] = mapped_column(String(100))


class ContentVersion(Base):
    """One saved version of a sequence: its definition and every file of its template folder.

    Versions are immutable once written (a running campaign renders from the one it pinned), so
    a process may cache what it compiled from one by id forever (campaigns.content_render)."""

    __tablename__ = "content_versions"
    __table_args__ = (UniqueConstraint("sequence", "number", name="uq_content_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sequence: Mapped[str] = mapped_column(String(100))  # the definition's file stem
    number: Mapped[int]  # 1, 2, ... per sequence
    author: Mapped[str] = mapped_column(String(320))  # a staff email, "seed" or "import"
    created_at: Mapped[datetime]
    note: Mapped[str] = mapped_column(Text, default="")  # what changed
    #: The TOML text as written, byte for byte (export gives it back), and its parsed data.
    definition_text: Mapped[str] = mapped_column(Text)
    definition: Mapped[dict[str, Any]] = mapped_column(default=dict)
    content_hash: Mapped[str] = mapped_column(String(64))


class ContentFile(Base):
    """One template file of a version, by its path under the sequence's template folder
    (`01-welcome.html`, `es/02-cycle.sms.txt`), its text exactly as written."""

    __tablename__ = "content_files"

    version_id: Mapped[int] = mapped_column(
        ForeignKey("content_versions.id", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(String(255), primary_key=True)
    text: Mapped[str] = mapped_column(Text)


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    definition: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: The content version the campaign runs (None: launched from files, before versions).
    content_version_id: Mapped[int | None] = mapped_column(ForeignKey("content_versions.id"))
    state: Mapped[str] = mapped_column(String(20), default=CampaignState.DRAFT)
    starts_at: Mapped[datetime | None]
    launched_at: Mapped[datetime | None]
    paused_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Enrollment(Base):
    __tablename__ = "enrollments"
    __table_args__ = (
        # `entry`: a sequence started by a booking event may take a contact again (triggers).
        UniqueConstraint("campaign_id", "contact_id", "entry", name="uq_enrollment"),
        Index("ix_enrollment_state", "state", "campaign_id"),
        # Staff reports: enrolled / active / completed / exit reasons per campaign, index-only.
        Index("ix_enrollment_campaign_state", "campaign_id", "state", "exit_reason"),
        Index("ix_enrollment_campaign_enrolled", "campaign_id", "enrolled_at"),
        # The funnel's branches (campaigns.reports): one GROUP BY path per campaign, index-only;
        # partial, so a sequence without branches (path NULL) adds no index entry.
        Index(
            "ix_enrollment_campaign_path",
            "campaign_id",
            "path",
            sqlite_where=text("path IS NOT NULL"),
            postgresql_where=text("path IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(20), default=EnrollmentState.ACTIVE)
    enrolled_at: Mapped[datetime] = mapped_column(default=utcnow)
    exited_at: Mapped[datetime | None]
    exit_reason: Mapped[str | None] = mapped_column(String(100))
    # Index of the last step that has a message row; -1 before the first is planned.
    planned_step: Mapped[int] = mapped_column(default=-1)
    #: The branches taken so far, in order, as "step:event" joined by commas (e.g.
    #: "first-visit:otherwise"); NULL until a branch decides (campaigns.paths).
    path: Mapped[str | None] = mapped_column(String(500))
    #: A branch is waiting (scheduler.branching): the planner leaves this enrollment alone until
    #: its deadline, unless a click or reply wakes it (set to now) sooner; NULL otherwise.
    wait_until: Mapped[datetime | None]
    #: 0 for the first time in this campaign; a re-entry (campaigns.triggers) counts up.
    entry: Mapped[int] = mapped_column(default=0, server_default="0")
    #: The booked visit an event-started enrollment is about (the booking system's time), if given.
    appointment_at: Mapped[datetime | None]


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("enrollment_id", "step_index", name="uq_message_step"),
        Index("ix_message_due", "state", "due_at"),
        # The dispatcher's claims, per channel, in claim order (due_at, id: PostgreSQL sorted
        # every planned row without the id): only planned rows, so a row leaves it once
        # claimed and later state changes never touch it; one channel's backlog is not walked
        # to find the other's due rows.
        Index(
            "ix_message_planned_channel_due",
            "channel",
            "due_at",
            "id",
            sqlite_where=text("state = 'planned'"),
            postgresql_where=text("state = 'planned'"),
        ),
        Index("ix_message_contact_channel", "contact_id", "channel", "sent_at"),
        Index("ix_message_campaign", "campaign_id", "step_index", "state"),
        # Staff reports, index-only: sent per day (sent_at), and the unsent rows' schedule per
        # day and step (sent_at NULL, due_at); state is left out so sends rewrite it only once.
        Index("ix_message_campaign_sent", "campaign_id", "sent_at", "due_at", "step_index"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollments.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    step_index: Mapped[int]
    #: The content version the step was planned with, which renders it (None: the campaign's
    #: definition snapshot and the template files, as before versions).
    content_version_id: Mapped[int | None] = mapped_column(ForeignKey("content_versions.id"))
    channel: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(20), default=MessageState.PLANNED)
    due_at: Mapped[datetime]
    not_after: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    provider: Mapped[str | None] = mapped_column(String(20))
    provider_message_id: Mapped[str | None] = mapped_column(String(100), index=True)
    provider_status: Mapped[str | None] = mapped_column(String(30))
    segments: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    skip_reason: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Event(Base):
    """What happened after a send: deliveries, clicks, unsubscribes, bookings, inbound texts."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_event_campaign_kind", "campaign_id", "kind", "occurred_at"),
        Index("ix_event_contact", "contact_id", "occurred_at"),
        # Staff reports: distinct clicks/bookings per campaign step, index-only.
        Index("ix_event_campaign_step", "campaign_id", "kind", "step_index", "message_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    step_index: Mapped[int | None]
    channel: Mapped[str | None] = mapped_column(String(10))
    provider: Mapped[str | None] = mapped_column(String(20))
    # Dedupe key for provider retries: SendGrid sg_event_id, Twilio MessageSid+status.
    provider_event_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    user_agent: Mapped[str | None] = mapped_column(String(400))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class RateBucket(Base):
    """A token bucket per provider sender, shared by every worker through the database."""

    __tablename__ = "rate_buckets"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime]


class ImportJob(Base):
    """One CSV import, so staff can watch its progress and fetch its rejects file."""

    __tablename__ = "imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="running")
    total_rows: Mapped[int] = mapped_column(default=0)
    processed_rows: Mapped[int] = mapped_column(default=0)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    rejects_path: Mapped[str | None] = mapped_column(String(500))
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Their own mobile number (E.164), where the editor's "send me a test" sends a text step.
    phone: Mapped[str | None] = mapped_column(String(32))


class StaffSession(Base):
    """One signed-in browser. The cookie carries a random key; only its hash is stored, and
    signing out ends the session here, so a copied cookie is worthless after logout."""

    __tablename__ = "staff_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie's key
    user_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]


class LaunchReview(Base):
    """One review of a sequence before launch (campaigns.review): an editor asks, an owner
    approves or sends it back. `fingerprint` is the content reviewed (a stored version's content
    hash, and `version` its number; for a sequence only in files, the definition and every
    template file, campaigns.review.content_fingerprint): an approval lets a launch through only
    while the content still has it. Staff are named by email, so a removed account's decisions
    stay readable."""

    __tablename__ = "launch_reviews"
    __table_args__ = (Index("ix_launch_review_sequence", "sequence", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sequence: Mapped[str] = mapped_column(String(100))  # the definition's name (campaign name)
    fingerprint: Mapped[str] = mapped_column(String(64))
    version: Mapped[int | None]  # the content version's number (campaigns.content_store)
    requested_by: Mapped[str] = mapped_column(String(320))
    requested_at: Mapped[datetime]
    decision: Mapped[str] = mapped_column(String(20), default="pending")
    decided_by: Mapped[str | None] = mapped_column(String(320))
    decided_at: Mapped[datetime | None]
    comment: Mapped[str] = mapped_column(Text, default="")


class WorkerHeartbeat(Base):
    """One worker process, as its clock last reported it (scheduler/heartbeat.py).

    The database is the only state the web server and the workers share, so this row is how a
    dashboard in another process knows whether anything is planning and sending: a row whose
    last tick is older than `scheduler.worker_stale_seconds`, or that says it stopped, is a
    worker that is gone.
    """

    __tablename__ = "worker_heartbeats"

    worker: Mapped[str] = mapped_column(String(100), primary_key=True)  # Dispatcher.worker
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    version: Mapped[str] = mapped_column(String(50))
    channels: Mapped[str] = mapped_column(String(100))  # what it drains: "email,sms"
    started_at: Mapped[datetime]
    last_tick_at: Mapped[datetime] = mapped_column(index=True)
    stopped_at: Mapped[datetime | None]


class ApiKey(Base):
    """A key the clinic's website, booking system or CRM uses on /api/v1 (staff.api_keys).

    Only a SHA-256 of the key is stored: the key is 256 random bits, so no dictionary or brute
    force reaches it, and a fast hash lets each request find its key by an indexed lookup (a
    slow password hash exists for low-entropy secrets people choose, not for these).
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    scope: Mapped[str] = mapped_column(String(10))  # "write" (also reads) or "read"
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(16))  # shown to staff to tell keys apart
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class IdempotentRequest(Base):
    """A POST answered under an `Idempotency-Key`: the same key and body replay the stored
    response; kept 24 hours (web.api.idempotency)."""

    __tablename__ = "idempotent_requests"
    __table_args__ = (
        UniqueConstraint("api_key_id", "idempotency_key", name="uq_idempotent_request"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int]
    response_body: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class WebhookEndpoint(Base):
    """A URL of the clinic's (its CRM, a Zapier hook) that is told about events as they happen
    (staff.webhook_endpoints registers it, scheduler.webhooks delivers).

    Unlike an API key, the secret is stored as it is: we sign every delivery with it
    (HMAC-SHA256), so we must be able to read it back, as Stripe and GitHub keep theirs. It is
    still shown to staff only once, at registration; after that only its first characters.

    `after_event_id` is the newest event when the endpoint was registered (nothing older is
    sent to it); `cursor_event_id` is the newest event the deliverer has looked at.
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    event_types: Mapped[list[str]] = mapped_column(default=list)
    secret: Mapped[str] = mapped_column(String(100))
    secret_prefix: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    after_event_id: Mapped[int] = mapped_column(default=0)
    cursor_event_id: Mapped[int] = mapped_column(default=0)
    last_status: Mapped[str | None] = mapped_column(String(200))
    last_attempt_at: Mapped[datetime | None]


#: What staff's "send a test event" posts; never made from an event.
WEBHOOK_TEST_TYPE = "webhook.test"


def delivery_urgency(event_type: str) -> int:
    """The order deliveries are claimed in, lowest first: an opt-out (a CRM must stop writing
    to the person), then what else concerns a contact and staff's test events (someone is
    watching the page), then message events. Stored with each delivery (`urgency`), so the
    claim reads the most urgent due ones off an index instead of sorting every due row."""
    if event_type == "contact.opted_out":
        return 0
    if event_type.startswith("contact.") or event_type == WEBHOOK_TEST_TYPE:
        return 1
    return 2


def _urgency_of_row(context: Any) -> int:
    """The column's default, for every insert path (ORM, Core, executemany): `context` is
    SQLAlchemy's execution context, with the row's own parameters."""
    return delivery_urgency(context.get_current_parameters()["event_type"])


class WebhookDelivery(Base):
    """One event for one endpoint: made once (the unique pair, whichever worker hands it out),
    posted until the receiver answers 2xx or a day has passed. The body is built at each attempt
    from the event and the contact as they are then, so a forgotten person's address is never
    kept here nor sent after the forget. `event_id` is NULL for a staff "send a test event"."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_delivery"),
        Index("ix_webhook_delivery_due", "next_attempt_at"),
        # The claim's order, over work still to do only (see delivery_urgency).
        Index(
            "ix_webhook_delivery_claim",
            "urgency",
            "next_attempt_at",
            "id",
            sqlite_where=text("next_attempt_at IS NOT NULL"),
            postgresql_where=text("next_attempt_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(40))
    urgency: Mapped[int] = mapped_column(
        SmallInteger, default=_urgency_of_row, server_default=text("2")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    # NULL once delivered or given up: the due index then holds only work still to do.
    next_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(300))
    delivered_at: Mapped[datetime | None]
    gave_up_at: Mapped[datetime | None]
