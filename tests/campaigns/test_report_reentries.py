"""Reports of a campaign a person may enter more than once (a booking-started sequence,
`reenter_after`; enrollments.entry): "enrolled" counts people, each contact once, the entries are
counted apart, and no stage's share goes above 100% (campaigns.reports)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from campaigns.booking import record_booking_event
from campaigns.definitions import load_sequence
from campaigns.lifecycle import launch
from campaigns.reports import campaign_counts, campaign_funnel
from core.clock import FrozenClock
from nurture.app import NurtureApp
from scheduler.planner import Planner
from storage.db import transaction
from storage.models import Campaign, Contact, Enrollment, Message, MessageState


def _event(app: NurtureApp, contact_id: int, kind: Any, reference: str) -> None:
    with transaction(app.sessions) as session:
        record_booking_event(
            session, session.get_one(Contact, contact_id), kind, at=app.clock(),
            source="test", reference=reference,
        )  # fmt: skip


def _send_planned(app: NurtureApp) -> None:
    """Plan, then mark the planned visit notes (step 0) delivered, as the provider would."""
    Planner(app.settings, app.sessions, app.clock).tick()
    with transaction(app.sessions) as session:
        planned = select(Message).where(Message.state == "planned", Message.step_index == 0)
        for message in session.scalars(planned):
            message.state, message.sent_at = MessageState.DELIVERED, app.clock()


def test_a_person_who_entered_twice_is_one_person_enrolled_with_two_entries(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock
) -> None:
    with transaction(nurture_app.sessions) as session:
        launch(session, load_sequence("pre-visit"), now=nurture_app.clock(),
               settings=nurture_app.settings)  # fmt: skip
    twice, once = make_contact(email="twice@example.com"), make_contact(email="once@example.com")
    _event(nurture_app, twice, "booked", "B-1")
    _event(nurture_app, once, "booked", "B-2")
    _send_planned(nurture_app)
    # Cancelled, then booked again: a second entry with its own visit notes.
    _event(nurture_app, twice, "cancelled", "B-1")
    frozen_clock.advance(hours=1)
    _event(nurture_app, twice, "booked", "B-3")
    _send_planned(nurture_app)
    with nurture_app.sessions() as session:
        entries = session.scalars(
            select(Enrollment.entry).where(Enrollment.contact_id == twice).order_by(Enrollment.id)
        ).all()
        assert entries == [0, 1]
        campaign = session.scalars(select(Campaign).where(Campaign.name == "pre-visit")).one()
        funnel = campaign_funnel(session, campaign)
        listed = campaign_counts(session)[campaign.id]
    assert (funnel.enrolled, funnel.entries) == (2, 3)  # people; entries apart
    assert (funnel.active, funnel.exited) == (2, 1)  # what became of each entry
    assert funnel.sent == 3  # messages: the visit notes of each entry
    assert dict(funnel.stages())["sent"] == 2 and dict(funnel.stages())["delivered"] == 2
    assert all(0 <= (funnel.share(stage) or 0) <= 1 for stage, _ in funnel.stages())
    assert funnel.share("sent") == 1.0
    assert (listed.enrolled, listed.entries) == (2, 3)


def test_a_campaign_nobody_entered_reports_no_people_and_no_share(
    nurture_app: NurtureApp,
) -> None:
    with transaction(nurture_app.sessions) as session:
        campaign, _ = launch(session, load_sequence("pre-visit"), now=nurture_app.clock(),
                             settings=nurture_app.settings)  # fmt: skip
        funnel = campaign_funnel(session, campaign)
        assert (funnel.enrolled, funnel.entries, funnel.share("sent")) == (0, 0, None)
        assert campaign.id not in campaign_counts(session)
