"""Launch, pause, resume and cancel: state changes on the campaign row, nothing else.

"Finished" is derived from the enrollments and messages (campaigns.state), never kept as a
cursor, so a resume can never re-send what was sent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from campaigns.content_render import ensure_valid_version
from campaigns.definitions import Sequence
from campaigns.enrollment import enroll_audience
from campaigns.validation import ensure_valid
from core.errors import InputError, NotFound
from core.settings import Settings, load_settings
from storage.models import Campaign, CampaignState, ContentVersion, Message, MessageState


def get_campaign(session: Session, name: str) -> Campaign:
    campaign = session.scalar(select(Campaign).where(Campaign.name == name))
    if campaign is None:
        raise NotFound(f"no campaign named {name!r}; launch it first")
    return campaign


def launch(
    session: Session,
    sequence: Sequence,
    *,
    now: datetime,
    starts_at: datetime | None = None,
    settings: Settings | None = None,
    progress: Callable[[int, int], None] | None = None,
    version: ContentVersion | None = None,
) -> tuple[Campaign, int]:
    """Create (or re-activate a draft of) the campaign, snapshot its definition, enroll.
    An invalid sequence is refused first (ValidationFailed, the same lines as `validate`);
    `progress(done, total)` follows the enrollment of a large audience. With a content
    `version` (whose definition `sequence` is), the campaign pins it: its messages render from
    the version's files (campaigns.content_render), checked before it starts."""
    settings = settings or load_settings()
    if version is None:
        ensure_valid(sequence, settings)
    else:
        ensure_valid_version(session, version, settings)
    campaign = session.scalar(select(Campaign).where(Campaign.name == sequence.name))
    if campaign is None:
        campaign = Campaign(name=sequence.name)
        session.add(campaign)
    elif campaign.state != CampaignState.DRAFT:
        raise InputError(
            f"campaign {sequence.name!r} is already {campaign.state}; "
            "use resume, or a new name for a new run"
        )
    campaign.definition = sequence.snapshot()
    campaign.content_version_id = version.id if version is not None else None
    campaign.state = CampaignState.ACTIVE
    campaign.launched_at = now
    campaign.starts_at = starts_at or now
    session.flush()
    enrolled = enroll_audience(session, campaign, at=campaign.starts_at, progress=progress)
    return campaign, enrolled


def pause(session: Session, name: str, *, now: datetime) -> Campaign:
    campaign = get_campaign(session, name)
    if campaign.state != CampaignState.ACTIVE:
        raise InputError(f"campaign {name!r} is {campaign.state}, not active")
    campaign.state, campaign.paused_at = CampaignState.PAUSED, now
    return campaign


def resume(session: Session, name: str) -> Campaign:
    campaign = get_campaign(session, name)
    if campaign.state != CampaignState.PAUSED:
        raise InputError(f"campaign {name!r} is {campaign.state}, not paused")
    campaign.state, campaign.paused_at = CampaignState.ACTIVE, None
    return campaign


def cancel(session: Session, name: str, *, now: datetime) -> Campaign:
    campaign = get_campaign(session, name)
    if campaign.state == CampaignState.CANCELLED:
        raise InputError(f"campaign {name!r} is already cancelled")
    campaign.state, campaign.cancelled_at = CampaignState.CANCELLED, now
    # Every message not yet claimed is skipped now, and so due now: a skipped row is never in
    # the future (campaigns.reports.upcoming counts unsent rows by due time). One a worker
    # holds is skipped by its re-check.
    session.execute(
        update(Message)
        .where(Message.campaign_id == campaign.id, Message.state == MessageState.PLANNED)
        .values(
            state=MessageState.SKIPPED,
            skip_reason="campaign cancelled",
            due_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return campaign
