"""A booking moved under its own reference (campaigns.booking._reschedule): a `booked` notice for
a known booking id with another visit time moves the visit; the same time again is a retry; a
late retry of the original notice (its own, older timestamp) leaves the moved visit alone. And a
retry recorded under the REST API's old key (`api:<kind>:<ref>`) is still a retry."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from campaigns.booking import RESCHEDULED, BookingEventResult, record_booking_event
from core.clock import FrozenClock
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import Contact, Enrollment, Event
from tests.campaigns.test_triggers import run_campaign


def _booked(
    app: NurtureApp, contact_id: int, visit: datetime, *, at: datetime | None = None
) -> BookingEventResult:
    with transaction(app.sessions) as session:
        contact = session.get_one(Contact, contact_id)
        return record_booking_event(
            session,
            contact,
            "booked",
            at=at or app.clock(),
            source="test",
            reference="B-1",
            appointment_at=visit,
        )


def _visit(app: NurtureApp, contact_id: int) -> datetime | None:
    with app.sessions() as session:
        return session.scalars(
            select(Enrollment.appointment_at).where(Enrollment.contact_id == contact_id)
        ).one()


def test_a_known_booking_with_a_new_visit_time_moves_the_visit_and_a_retry_does_not(
    nurture_app: NurtureApp, make_contact: Any, frozen_clock: FrozenClock
) -> None:
    contact = make_contact()
    run_campaign(nurture_app, "pre-visit", "booked")
    first_visit = nurture_app.clock() + timedelta(days=7)
    first_notice = nurture_app.clock()
    assert _booked(nurture_app, contact, first_visit).enrolled_campaigns == ("pre-visit",)
    frozen_clock.advance(hours=1)
    new_visit = first_visit + timedelta(days=2)
    moved = _booked(nurture_app, contact, new_visit)
    assert (moved.status, moved.moved_campaigns, moved.enrolled_campaigns) == (
        "booked",
        ("pre-visit",),
        (),
    )
    assert _visit(nurture_app, contact) == new_visit
    frozen_clock.advance(hours=1)
    # The move's notice again: a retry.
    assert _booked(nurture_app, contact, new_visit).status == "duplicate"
    # The original notice retried late, with its own time: it must not move the visit back.
    assert _booked(nurture_app, contact, first_visit, at=first_notice).status == "duplicate"
    assert _visit(nurture_app, contact) == new_visit
    with nurture_app.sessions() as session:
        kinds = session.execute(
            select(Event.kind, func.count()).where(Event.contact_id == contact).group_by(Event.kind)
        )
        assert dict(kinds.all()) == {"booked": 1, RESCHEDULED: 1}  # one booking in the funnel
    # Moved back to the first time by a newer notice: that is a move too.
    frozen_clock.advance(hours=1)
    assert _booked(nurture_app, contact, first_visit).moved_campaigns == ("pre-visit",)
    assert _visit(nurture_app, contact) == first_visit


def test_an_event_recorded_under_the_apis_old_key_is_a_duplicate(
    nurture_app: NurtureApp, make_contact: Any
) -> None:
    contact = make_contact()
    run_campaign(nurture_app, "rebooking", "no_show")
    with transaction(nurture_app.sessions) as session:  # as the API recorded it before
        session.add(
            Event(
                kind="no_show",
                occurred_at=nurture_app.clock(),
                contact_id=contact,
                provider="api",
                provider_event_id="api:no_show:B-9",
                data={"source": "api: booking system"},
            )
        )
    with transaction(nurture_app.sessions) as session:
        retried = record_booking_event(
            session,
            session.get_one(Contact, contact),
            "no_show",
            at=nurture_app.clock(),
            source="booking webhook",
            reference="B-9",
        )
    assert retried == BookingEventResult("duplicate")
    with nurture_app.sessions() as session:
        assert session.scalar(select(Enrollment.id)) is None
