"""Enrolling an audience: set-based, in windows of contact ids, once per contact, with progress."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from campaigns import enrollment, lifecycle
from campaigns.definitions import load_sequence
from core.clock import FrozenClock
from nurture.app import NurtureApp
from storage.db import transaction
from storage.models import Campaign, Enrollment, EnrollmentState


def test_audience_is_enrolled_once_in_windows_with_progress(
    nurture_app: NurtureApp,
    frozen_clock: FrozenClock,
    make_contact,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(enrollment, "ENROLL_CHUNK", 2)
    opted_in = [make_contact() for _ in range(5)]
    no_email_consent = make_contact(email_consent=False)
    steps: list[tuple[int, int]] = []
    with transaction(nurture_app.sessions) as session:
        campaign, _ = lifecycle.launch(
            session, load_sequence("spasm-relief"), now=frozen_clock(), starts_at=None
        )
        session.execute(Enrollment.__table__.delete())  # enroll again below, with progress
        added = enrollment.enroll_audience(
            session,
            campaign,
            at=frozen_clock(),
            progress=lambda done, total: steps.append((done, total)),
        )
        again = enrollment.enroll_audience(session, campaign, at=frozen_clock())
        rows = session.execute(
            select(
                Enrollment.contact_id,
                Enrollment.state,
                Enrollment.planned_step,
                Enrollment.enrolled_at,
            )
        ).all()
    assert added == 5 and again == 0
    assert sorted(row.contact_id for row in rows) == sorted(opted_in)
    assert no_email_consent not in {row.contact_id for row in rows}
    assert {(row.state, row.planned_step) for row in rows} == {(EnrollmentState.ACTIVE, -1)}
    assert {row.enrolled_at for row in rows} == {frozen_clock()}
    total = no_email_consent - opted_in[0] + 1
    assert steps == [(2, total), (4, total), (total, total)]


def test_a_limit_enrolls_the_lowest_ids_first(
    nurture_app: NurtureApp, frozen_clock: FrozenClock, make_contact
) -> None:
    ids = [make_contact() for _ in range(3)]
    with transaction(nurture_app.sessions) as session:
        campaign, _ = lifecycle.launch(session, load_sequence("spasm-relief"), now=frozen_clock())
        session.execute(Enrollment.__table__.delete())
        assert enrollment.enroll_audience(session, campaign, at=frozen_clock(), limit=2) == 2
        enrolled = set(session.scalars(select(Enrollment.contact_id)))
        assert enrolled == set(ids[:2])
        assert enrollment.enroll_audience(session, campaign, at=frozen_clock(), limit=2) == 1
        assert session.scalar(select(Campaign.name)) == "spasm-relief"


def test_an_empty_database_enrolls_no_one(
    nurture_app: NurtureApp, frozen_clock: FrozenClock
) -> None:
    with transaction(nurture_app.sessions) as session:
        campaign, enrolled = lifecycle.launch(
            session, load_sequence("spasm-relief"), now=frozen_clock()
        )
    assert enrolled == 0 and campaign.state == "active"
