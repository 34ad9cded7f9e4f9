"""The shapes /api/v1 accepts and answers, as the OpenAPI schema shows them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator


def in_utc(value: datetime | None) -> datetime | None:
    """Stored times are UTC; 9999-12-31T23:59-05:00 is past the last moment Python holds."""
    try:
        return None if value is None else value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range") from None


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["opted_in", "opted_out"]
    evidence: str = Field(
        "",
        max_length=2000,
        description=(
            "Proof of consent: the disclosure shown, the form's URL, time, IP address. "
            "Required for an SMS opt-in (TCPA prior express written consent)."
        ),
    )
    occurred_at: AwareDatetime | None = Field(
        None, description="When the person said so (ISO 8601 with offset); default now"
    )

    @field_validator("occurred_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return in_utc(value)


class ContactIn(BaseModel):
    """A person, found by email or phone (created when neither is known)."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(None, max_length=320)
    phone: str | None = Field(None, max_length=40)
    first_name: str = Field("", max_length=100)
    last_name: str = Field("", max_length=100)
    timezone: str | None = Field(None, max_length=64, description="IANA name")
    language: str | None = Field(None, max_length=20, description="en or es")
    tags: list[str] = Field(default_factory=list, max_length=50)
    email_consent: ConsentIn | None = None
    sms_consent: ConsentIn | None = None


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["booked", "cancelled", "no_show", "attended"]
    occurred_at: AwareDatetime | None = Field(None, description="Default now")
    reference: str | None = Field(
        None, min_length=1, max_length=150, description="The booking system's id: recorded once"
    )
    appointment_at: AwareDatetime | None = Field(None, description="When the booked visit is")

    @field_validator("occurred_at", "appointment_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return in_utc(value)


class ChannelConsent(BaseModel):
    status: Literal["opted_in", "opted_out"] | None = Field(
        description="The newest ledger event's status; null when never asked"
    )
    has_address: bool


class EnrollmentOut(BaseModel):
    campaign: str
    state: str
    enrolled_at: datetime
    exited_at: datetime | None
    exit_reason: str | None


class ContactOut(BaseModel):
    id: int
    email: str | None
    phone: str | None
    first_name: str
    last_name: str
    timezone: str
    language: str
    tags: list[str]
    booked_at: datetime | None
    consent: dict[Literal["email", "sms"], ChannelConsent]
    enrollments: list[EnrollmentOut]


class ContactWritten(BaseModel):
    id: int
    created: bool


class EventRecorded(BaseModel):
    contact_id: int
    kind: str
    status: Literal["recorded", "duplicate"]
    exited_campaigns: list[str] = Field(default_factory=list)
    #: Sequences the event started (campaigns.triggers: pre-visit on booked, re-booking on no_show)
    enrolled_campaigns: list[str] = Field(default_factory=list)
    #: Running pre-visit sequences that took the booking's new visit time (campaigns.triggers)
    moved_campaigns: list[str] = Field(default_factory=list)


class StageOut(BaseModel):
    stage: str
    people: int
    share: float | None


class StepOut(BaseModel):
    step_index: int
    name: str
    channel: str
    reached: int
    pending: int
    sent: int
    delivered: int
    clicked: int
    booked: int
    unsubscribed: int
    bounced: int
    failed: int
    skipped: int
    uncertain: int


class BranchOut(BaseModel):
    step: str = Field(description="The branching step")
    event: Literal["clicked", "replied", "otherwise"]
    target: str = Field(description="The step this way leads to, or `end`")
    label: str = Field(description="What it means, as the dashboard says it")
    people: int
    decided: int = Field(description="People decided at the step, every way together")
    share: float | None = Field(description="`people` over `decided`: a step's ways add to 1")


class FunnelOut(BaseModel):
    name: str
    enrolled: int = Field(description="People (each contact once)")
    entries: int = Field(description="Enrollments: above `enrolled` when people entered again")
    active: int
    completed: int
    exited: int
    exit_reasons: dict[str, int]
    sent: int
    delivered: int
    clicked: int
    booked: int
    unsubscribed: int
    bounced: int
    failed: int
    skipped: int
    uncertain: int
    pending: int
    stages: list[StageOut] = Field(description="People at each stage, over people enrolled")
    steps: list[StepOut]
    branches: list[BranchOut] = Field(
        description="A row per way out of each branching step (empty without branches)"
    )
