"""campaigns.reports on SQLite and PostgreSQL: the funnel per step, the daily series, the
7-day schedule and the list counts, from rows made by the real planner and dispatcher."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from campaigns import lifecycle
from campaigns.booking import mark_booked
from campaigns.definitions import load_sequence
from campaigns.reports import campaign_counts, campaign_funnel, daily_series, upcoming
from campaigns.state import CampaignStatus, campaign_status
from contacts.optout import opt_out
from core.clock import FrozenClock
from nurture.app import NurtureApp
from providers.base import ProviderRejected
from providers.memory import MemoryChannel
from storage.db import transaction
from storage.models import Campaign, Contact, Event, Message, MessageState


def _launch_demo(app: NurtureApp, make_contact, channel: MemoryChannel) -> list[int]:
    ids = [make_contact(tags=("demo",)) for _ in range(5)]
    bounced_to = "pat5@example.com"
    channel.fail_with = lambda payload: (
        ProviderRejected("memory", "invalid address") if payload.to == bounced_to else None
    )
    with transaction(app.sessions) as session:
        lifecycle.launch(session, load_sequence("demo"), now=app.clock(), settings=app.settings)
    app.planner.tick()
    app.dispatcher.tick()
    return ids


def _funnel(app: NurtureApp):
    with app.sessions() as session:
        campaign = session.scalar(select(Campaign).where(Campaign.name == "demo"))
        return campaign, campaign_funnel(session, campaign)


def test_funnel_counts_each_stage_per_step(
    nurture_app: NurtureApp, make_contact, channel: MemoryChannel, frozen_clock: FrozenClock
) -> None:
    ids = _launch_demo(nurture_app, make_contact, channel)
    with transaction(nurture_app.sessions) as session:
        sent = list(
            session.scalars(
                select(Message).where(Message.state == MessageState.SENT).order_by(Message.id)
            )
        )
        sent[0].state = MessageState.DELIVERED
        sent[1].state = MessageState.UNDELIVERED
        for message in (sent[0], sent[0], sent[2]):  # a double click counts once
            session.add(
                Event(
                    kind="clicked",
                    message_id=message.id,
                    contact_id=message.contact_id,
                    campaign_id=message.campaign_id,
                    step_index=message.step_index,
                    occurred_at=frozen_clock(),
                )
            )
        # ids[0] clicked sent[0] just now: the booking is credited to its step.
        mark_booked(session, session.get_one(Contact, ids[0]), at=frozen_clock(), source="test")
        opt_out(
            session, session.get_one(Contact, ids[1]), "email", source="test", at=frozen_clock()
        )
    nurture_app.planner.tick()  # the opted-out contact leaves the sequence

    campaign, funnel = _funnel(nurture_app)
    assert (funnel.enrolled, funnel.sent, funnel.delivered, funnel.clicked, funnel.booked) == (
        5,
        4,
        1,
        2,
        1,
    )
    assert (funnel.unsubscribed, funnel.bounced, funnel.failed) == (1, 1, 1)
    welcome = funnel.steps[0]
    assert (welcome.name, welcome.channel, welcome.reached, welcome.sent) == (
        "welcome",
        "email",
        5,
        4,
    )
    assert (welcome.booked, welcome.unsubscribed) == (1, 1)
    assert funnel.exit_reasons == {"booked": 1, "unsubscribed": 1}
    assert [stage for stage, _ in funnel.stages()] == [
        "enrolled",
        "sent",
        "delivered",
        "clicked",
        "booked",
    ]
    with nurture_app.sessions() as session:
        assert campaign_status(session, campaign, now=nurture_app.clock()) == "active"

    with nurture_app.sessions() as session:
        counts = campaign_counts(session)[campaign.id]
    assert (counts.enrolled, counts.exited, counts.sent) == (5, 2, 4)


def test_daily_series_cuts_days_in_the_clinic_zone(
    nurture_app: NurtureApp, make_contact, channel: MemoryChannel, frozen_clock: FrozenClock
) -> None:
    _launch_demo(nurture_app, make_contact, channel)
    campaign, _ = _funnel(nurture_app)
    with transaction(nurture_app.sessions) as session:
        message = session.scalars(select(Message).where(Message.sent_at.is_not(None))).first()
        # 2026-12-02 06:30 UTC is still Dec 1 in Los Angeles.
        session.add(
            Event(
                kind="clicked",
                campaign_id=campaign.id,
                step_index=0,
                message_id=message.id,
                occurred_at=frozen_clock.advance(hours=12, minutes=30),
            )
        )
    with nurture_app.sessions() as session:
        series = daily_series(
            session, campaign.id, end=frozen_clock(), days=7, zone="America/Los_Angeles"
        )
        utc = daily_series(session, campaign.id, end=frozen_clock(), days=7, zone="UTC")
    assert len(series) == 7 and series[-1].day == date(2026, 12, 1)
    assert (series[-1].enrolled, series[-1].sent, series[-1].clicked) == (5, 4, 1)
    assert sum(point.sent for point in series[:-1]) == 0
    assert utc[-1].day == date(2026, 12, 2) and utc[-1].clicked == 1 and utc[-2].sent == 4


def test_upcoming_lists_planned_messages_per_local_day(
    nurture_app: NurtureApp, make_contact, channel: MemoryChannel, frozen_clock: FrozenClock
) -> None:
    ids = [make_contact(tags=("demo",)) for _ in range(3)]
    start = frozen_clock.now.replace(day=3)  # Thursday
    with transaction(nurture_app.sessions) as session:
        campaign, _ = lifecycle.launch(
            session,
            load_sequence("demo"),
            now=frozen_clock(),
            starts_at=start,
            settings=nurture_app.settings,
        )
        campaign_id = campaign.id
    nurture_app.planner.tick()
    with nurture_app.sessions() as session:
        days = upcoming(
            session, campaign_id, now=frozen_clock(), days=7, zone="America/Los_Angeles"
        )
        none = upcoming(
            session, campaign_id, now=frozen_clock(), days=1, zone="America/Los_Angeles"
        )
    assert [(d.day, d.by_step, d.total) for d in days] == [(date(2026, 12, 3), {0: len(ids)}, 3)]
    assert none == []
    # Cancelled: nothing is waiting any more (its skipped rows are due when they were skipped).
    with transaction(nurture_app.sessions) as session:
        lifecycle.cancel(session, "demo", now=frozen_clock())
    with nurture_app.sessions() as session:
        after = upcoming(
            session, campaign_id, now=frozen_clock(), days=7, zone="America/Los_Angeles"
        )
    assert after == []


def test_a_campaign_where_nobody_is_left_is_finished(
    nurture_app: NurtureApp, make_contact, channel: MemoryChannel, frozen_clock: FrozenClock
) -> None:
    contact = make_contact(tags=("demo",))
    with transaction(nurture_app.sessions) as session:
        lifecycle.launch(
            session, load_sequence("demo"), now=frozen_clock(), settings=nurture_app.settings
        )
        mark_booked(session, session.get_one(Contact, contact), at=frozen_clock(), source="t")
    campaign, funnel = _funnel(nurture_app)
    # Booked before any message: they left by booking, but no message of it is credited.
    assert funnel.exit_reasons == {"booked": 1}
    assert funnel.booked == 0 and funnel.steps[0].booked == 0
    with nurture_app.sessions() as session:
        assert campaign_status(session, campaign, now=frozen_clock()) == CampaignStatus.FINISHED
