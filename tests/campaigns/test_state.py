"""The one campaign status: what staff decided, and "finished" derived from the rows on the app
clock; the batched form answers like the single one."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update

from campaigns import lifecycle
from campaigns.definitions import load_sequence
from campaigns.state import CampaignStatus, campaign_status, campaign_statuses
from core.clock import FrozenClock
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import Campaign, Enrollment, EnrollmentState, Message, MessageState


def _launch(app: NurtureApp, name: str, *, starts_at: datetime | None = None) -> int:
    sequence = load_sequence("demo").model_copy(update={"name": name})
    with transaction(app.sessions) as session:
        campaign, _ = lifecycle.launch(
            session, sequence, now=app.clock(), starts_at=starts_at, settings=app.settings
        )
        return campaign.id


def _complete_everyone(app: NurtureApp, campaign_id: int) -> None:
    with transaction(app.sessions) as session:
        session.execute(
            update(Enrollment)
            .where(Enrollment.campaign_id == campaign_id)
            .values(state=EnrollmentState.COMPLETED)
        )


def _status(app: NurtureApp, campaign_id: int) -> CampaignStatus:
    with app.sessions() as session:
        return campaign_status(session, session.get(Campaign, campaign_id), now=app.clock())


def test_not_launched_and_what_staff_decided(nurture_app: NurtureApp, make_contact) -> None:
    make_contact(tags=("demo",))
    with nurture_app.sessions() as session:
        assert campaign_status(session, None, now=nurture_app.clock()) == "not launched"
    running = _launch(nurture_app, "running")
    paused = _launch(nurture_app, "paused")
    cancelled = _launch(nurture_app, "cancelled")
    with transaction(nurture_app.sessions) as session:
        lifecycle.pause(session, "paused", now=nurture_app.clock())
        lifecycle.cancel(session, "cancelled", now=nurture_app.clock())
    assert _status(nurture_app, running) == CampaignStatus.ACTIVE
    assert _status(nurture_app, paused) == CampaignStatus.PAUSED
    assert _status(nurture_app, cancelled) == CampaignStatus.CANCELLED
    for campaign_id in (paused, cancelled):  # nobody left does not finish these
        _complete_everyone(nurture_app, campaign_id)
    assert _status(nurture_app, paused) == CampaignStatus.PAUSED
    assert _status(nurture_app, cancelled) == CampaignStatus.CANCELLED


def test_finished_once_nobody_is_active_and_nothing_is_left_to_send(
    nurture_app: NurtureApp, make_contact, frozen_clock: FrozenClock
) -> None:
    make_contact(tags=("demo",))
    campaign_id = _launch(nurture_app, "demo")
    with transaction(nurture_app.sessions) as session:
        enrollment = session.scalar(select(Enrollment).where(Enrollment.campaign_id == campaign_id))
        session.add(
            Message(
                enrollment_id=enrollment.id,
                campaign_id=campaign_id,
                contact_id=enrollment.contact_id,
                step_index=0,
                channel="email",
                due_at=frozen_clock(),
                not_after=frozen_clock() + timedelta(hours=48),
                state=MessageState.CLAIMED,
            )
        )
    _complete_everyone(nurture_app, campaign_id)
    assert _status(nurture_app, campaign_id) == CampaignStatus.ACTIVE  # a message still open
    with transaction(nurture_app.sessions) as session:
        session.execute(update(Message).values(state=MessageState.DELIVERED))
    assert _status(nurture_app, campaign_id) == CampaignStatus.FINISHED
    finished = _status(nurture_app, campaign_id)
    assert finished.pausable and finished.cancellable and not finished.launchable


def test_not_finished_before_its_start_or_with_nobody_enrolled(
    nurture_app: NurtureApp, make_contact, frozen_clock: FrozenClock
) -> None:
    empty = _launch(nurture_app, "nobody")  # no demo-tagged contact yet
    assert _status(nurture_app, empty) == CampaignStatus.ACTIVE
    make_contact(tags=("demo",))
    later = _launch(nurture_app, "later", starts_at=frozen_clock() + timedelta(days=2))
    _complete_everyone(nurture_app, later)
    assert _status(nurture_app, later) == CampaignStatus.ACTIVE
    frozen_clock.advance(days=2)
    assert _status(nurture_app, later) == CampaignStatus.FINISHED


def test_the_batched_form_answers_like_the_single_one(
    nurture_app: NurtureApp, make_contact
) -> None:
    make_contact(tags=("demo",))
    ids = [_launch(nurture_app, name) for name in ("a", "b", "c", "d")]
    _complete_everyone(nurture_app, ids[1])
    with transaction(nurture_app.sessions) as session:
        lifecycle.pause(session, "c", now=nurture_app.clock())
        lifecycle.cancel(session, "d", now=nurture_app.clock())
    with nurture_app.sessions() as session:
        campaigns = list(session.scalars(select(Campaign)))
        batched = campaign_statuses(session, campaigns, now=nurture_app.clock())
    assert batched == {campaign_id: _status(nurture_app, campaign_id) for campaign_id in ids}
    assert list(batched.values()) == ["active", "finished", "paused", "cancelled"]
