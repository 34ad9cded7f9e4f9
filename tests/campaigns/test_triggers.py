"""Sequences started by booking events (campaigns.triggers): who is enrolled, once of a kind,
re-entry after `reenter_after`, and what each event ends. Every path records events through
campaigns.booking.record_booking_event; the webhook and API tests (tests/web) drive it end to end.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import select

from campaigns.audience import audience_size_query
from campaigns.booking import record_booking_event
from campaigns.definitions import Sequence, load_sequence
from campaigns.enrollment import enroll_audience
from contacts.suppressions import suppress
from core.clock import FrozenClock
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import Campaign, CampaignState, Contact, Enrollment, Event


def run_campaign(app: NurtureApp, name: str, trigger: str, **changes: Any) -> int:
    """A running campaign of spasm-relief's steps started by `trigger` (no exit on booking)."""
    data = load_sequence("spasm-relief").snapshot()
    data.update(name=name, trigger=trigger, exit={"booked": False}, **changes)
    sequence = Sequence.model_validate(data)
    with transaction(app.sessions) as session:
        campaign = Campaign(
            name=name,
            definition=sequence.snapshot(),
            state=CampaignState.ACTIVE,
            launched_at=app.clock(),
            starts_at=app.clock(),
        )
        session.add(campaign)
        session.flush()
        return campaign.id


def event(app: NurtureApp, contact_id: int, kind: Any, reference: str | None = None) -> Any:
    with transaction(app.sessions) as session:
        contact = session.get_one(Contact, contact_id)
        return record_booking_event(
            session, contact, kind, at=app.clock(), source="test", reference=reference
        )


def entries(app: NurtureApp, contact_id: int) -> list[tuple[str, int, str, str | None]]:
    with app.sessions() as session:
        rows = session.execute(
            select(Campaign.name, Enrollment.entry, Enrollment.state, Enrollment.exit_reason)
            .join(Campaign, Campaign.id == Enrollment.campaign_id)
            .where(Enrollment.contact_id == contact_id)
            .order_by(Enrollment.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def test_a_triggered_campaign_enrolls_nobody_at_launch_or_on_a_tick(
    nurture_app: NurtureApp, make_contact: Any
) -> None:
    make_contact()
    campaign_id = run_campaign(nurture_app, "pre-visit", "booked")
    with transaction(nurture_app.sessions) as session:
        campaign = session.get_one(Campaign, campaign_id)
        assert enroll_audience(session, campaign, at=nurture_app.clock()) == 0
        assert session.scalar(select(Enrollment.id)) is None
        sequence = Sequence.from_snapshot(campaign.definition)
        assert session.scalar(audience_size_query(sequence)) == 0  # previews and projections


def test_booking_starts_the_pre_visit_once_and_re_entry_waits(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock
) -> None:
    contact = make_contact()
    run_campaign(nurture_app, "pre-visit", "booked", reenter_after="30d")
    first = event(nurture_app, contact, "booked", "B-1")
    assert (first.status, first.enrolled_campaigns) == ("booked", ("pre-visit",))
    # Still in it: a second booking does not enroll again ("one of a kind at a time").
    assert event(nurture_app, contact, "booked", "B-2").enrolled_campaigns == ()
    assert event(nurture_app, contact, "booked", "B-2").status == "duplicate"
    # The visit happened: the pre-visit ends, and a booking within 30 days does not re-enter.
    assert event(nurture_app, contact, "attended", "B-1").exited_campaigns == ("pre-visit",)
    frozen_clock.advance(days=29)
    assert event(nurture_app, contact, "booked", "B-3").enrolled_campaigns == ()
    frozen_clock.advance(days=2)
    assert event(nurture_app, contact, "booked", "B-4").enrolled_campaigns == ("pre-visit",)
    # Cancelled and booked again (a reschedule): that visit never happened, so the new one
    # gets its own pre-visit at once.
    assert event(nurture_app, contact, "cancelled", "B-4").exited_campaigns == ("pre-visit",)
    assert event(nurture_app, contact, "booked", "B-5").enrolled_campaigns == ("pre-visit",)
    assert entries(nurture_app, contact) == [
        ("pre-visit", 0, "exited", "attended"),
        ("pre-visit", 1, "exited", "cancelled"),
        ("pre-visit", 2, "active", None),
    ]


def test_without_re_entry_a_sequence_is_entered_once(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock
) -> None:
    contact = make_contact()
    run_campaign(nurture_app, "rebooking", "no_show")
    assert event(nurture_app, contact, "no_show", "B-1").enrolled_campaigns == ("rebooking",)
    assert event(nurture_app, contact, "booked", "B-2").exited_campaigns == ("rebooking",)
    frozen_clock.advance(days=400)
    assert event(nurture_app, contact, "no_show", "B-2").enrolled_campaigns == ()
    assert entries(nurture_app, contact) == [("rebooking", 0, "exited", "booked")]


def test_one_sequence_of_a_kind_at_a_time(nurture_app: NurtureApp, make_contact: Any) -> None:
    contact = make_contact()
    run_campaign(nurture_app, "rebooking", "no_show")
    run_campaign(nurture_app, "rebooking-gentler", "no_show")
    run_campaign(nurture_app, "after-cancel", "cancelled")
    assert event(nurture_app, contact, "no_show").enrolled_campaigns == ("rebooking",)
    # Another kind is another matter: a cancellation may start its own sequence.
    assert event(nurture_app, contact, "cancelled").enrolled_campaigns == ("after-cancel",)
    assert [row[0] for row in entries(nurture_app, contact)] == ["rebooking", "after-cancel"]


def test_no_consent_suppressed_or_erased_is_not_enrolled_but_the_event_is_recorded(
    nurture_app: NurtureApp, make_contact: Any
) -> None:
    run_campaign(nurture_app, "rebooking", "no_show")
    no_consent = make_contact(email_consent=False)
    suppressed = make_contact(email="gone@example.com")
    with transaction(nurture_app.sessions) as session:
        suppress(session, "email", "gone@example.com", "unsubscribed", at=nurture_app.clock())
    for contact in (no_consent, suppressed):
        assert event(nurture_app, contact, "no_show").enrolled_campaigns == ()
        assert entries(nurture_app, contact) == []
    with nurture_app.sessions() as session:
        kinds = session.scalars(select(Event.kind).where(Event.kind == "no_show")).all()
    assert len(kinds) == 2


def test_a_text_only_sequence_needs_sms_consent(nurture_app: NurtureApp, make_contact: Any) -> None:
    run_campaign(nurture_app, "rebooking", "no_show", audience={"require_consent": ["sms"]})
    email_only = make_contact(phone="+13105550101")
    texts_too = make_contact(phone="+13105550102", sms=True)
    assert event(nurture_app, email_only, "no_show").enrolled_campaigns == ()
    assert event(nurture_app, texts_too, "no_show").enrolled_campaigns == ("rebooking",)


def test_a_paused_campaign_takes_no_one(nurture_app: NurtureApp, make_contact: Any) -> None:
    campaign_id = run_campaign(nurture_app, "rebooking", "no_show")
    with transaction(nurture_app.sessions) as session:
        session.get_one(Campaign, campaign_id).state = CampaignState.PAUSED
    assert event(nurture_app, make_contact(), "no_show").enrolled_campaigns == ()


def test_two_events_at_once_on_postgresql_still_start_one_sequence_of_a_kind(
    nurture_app: NurtureApp, make_contact: Any
) -> None:
    """The contact's row lock (campaigns.triggers._lock): the second event waits for the first
    to commit, then sees its enrollment. Without it each would start its own re-booking."""
    if nurture_app.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writing transaction at a time")
    contact_id = make_contact()
    run_campaign(nurture_app, "rebooking", "no_show")
    run_campaign(nurture_app, "rebooking-gentler", "no_show")
    first = nurture_app.sessions()
    contact = first.get_one(Contact, contact_id)
    started = record_booking_event(first, contact, "no_show", at=nurture_app.clock(), source="a")
    answers: list[Any] = []
    second = threading.Thread(
        target=lambda: answers.append(event(nurture_app, contact_id, "no_show"))
    )
    second.start()
    second.join(timeout=0.5)
    assert second.is_alive()  # waiting on the first's lock
    first.commit()
    first.close()
    second.join(timeout=10)
    assert started.enrolled_campaigns == ("rebooking",)
    assert answers[0].enrolled_campaigns == ()
    assert [row[0] for row in entries(nurture_app, contact_id)] == ["rebooking"]
