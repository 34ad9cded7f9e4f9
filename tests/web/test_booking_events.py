"""Booking events through the signed webhook and the REST API (issue 18): a booking ends the
nurture and starts the pre-visit sequence, a cancellation or a no-show a re-booking one, once of
a kind, again only after `reenter_after`; both paths share campaigns.booking.record_booking_event.
The campaigns are the real definitions (campaigns/*.toml), launched as staff launch them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.definitions import load_sequence
from campaigns.lifecycle import launch
from core.clock import FrozenClock
from core.signatures import sign
from nurture.app import NurtureApp
from scheduler.planner import Planner
from staff.api_keys import create_key
from storage.db import transaction
from storage.models import Campaign, Enrollment, Event, Message


@pytest.fixture
def running(nurture_app: NurtureApp) -> None:
    """The three event-started sequences, launched (each enrolls nobody at launch)."""
    with transaction(nurture_app.sessions) as session:
        for name in ("pre-visit", "rebooking", "rebooking-cancelled"):
            _, enrolled = launch(
                session, load_sequence(name), now=nurture_app.clock(), settings=nurture_app.settings
            )
            assert enrolled == 0


def _notify(client: Any, signing: Any, app: NurtureApp, **payload: Any) -> Any:
    body = json.dumps(payload).encode()
    header = sign(signing.booking_secret, body, int(app.clock().timestamp()))
    headers = {"Content-Type": "application/json", "X-Nurture-Signature": header}
    return client.post("/webhooks/booking", content=body, headers=headers)


def _where(session: Session, contact_id: int) -> list[tuple[str, str, str | None]]:
    rows = session.execute(
        select(Campaign.name, Enrollment.state, Enrollment.exit_reason)
        .join(Campaign, Campaign.id == Enrollment.campaign_id)
        .where(Enrollment.contact_id == contact_id)
        .order_by(Enrollment.id)
    )
    return [(row.name, row.state, row.exit_reason) for row in rows]


def test_a_signed_booking_ends_the_nurture_and_starts_the_pre_visit_in_the_contacts_window(
    nurture_app: NurtureApp, make_contact: Any, send: Any, client: Any, signing: Any, running: None
) -> None:
    # 18:00 UTC is 03:00 on Wednesday in Tokyo: the first email waits for its 08:00 window there.
    email = "kenji@example.com"
    contact = make_contact(email=email, timezone="Asia/Tokyo")
    send(contact)  # in the nurture (web-test)
    visit = "2026-12-09T10:30:00+09:00"
    answer = _notify(
        client, signing, nurture_app, booking_id="B-1", email=email,
        appointment_at=visit,
    )  # fmt: skip
    assert answer.status_code == 200 and answer.json() == {"status": "booked"}
    Planner(nurture_app.settings, nurture_app.sessions, nurture_app.clock).tick()
    with nurture_app.sessions() as session:
        assert _where(session, contact) == [
            ("web-test", "exited", "booked"),
            ("pre-visit", "active", None),
        ]
        pre_visit = session.scalar(select(Campaign.id).where(Campaign.name == "pre-visit"))
        enrollment = session.scalars(
            select(Enrollment).where(Enrollment.campaign_id == pre_visit)
        ).one()
        assert enrollment.appointment_at == datetime.fromisoformat(visit).astimezone(UTC)
        first = session.scalars(select(Message).where(Message.enrollment_id == enrollment.id)).one()
        assert (first.step_index, first.channel, first.state) == (0, "email", "planned")
        assert first.due_at == datetime(2026, 12, 1, 23, 0, tzinfo=UTC)  # 08:00 Wed in Tokyo
        booked = session.scalars(select(Event).where(Event.kind == "booked")).one()
        assert booked.data["appointment_at"] == "2026-12-09T01:30:00+00:00"


def test_cancel_reschedule_and_no_show_move_the_person_along(
    nurture_app: NurtureApp,
    frozen_clock: FrozenClock,
    make_contact: Any,
    client: Any,
    signing: Any,
    running: None,
) -> None:
    contact = make_contact(email="ana@example.com")
    email = "ana@example.com"

    def notify(**payload: Any) -> Any:
        return _notify(client, signing, nurture_app, email=email, **payload).json()["status"]

    assert notify(booking_id="B-1") == "booked"
    assert notify(booking_id="B-2") == "booked"  # in the pre-visit already: not a second one
    assert notify(event="cancelled", booking_id="B-1") == "cancelled"
    assert notify(event="cancelled", booking_id="B-1") == "duplicate"
    frozen_clock.advance(days=10)
    # Booked again: the re-booking ends, and the new visit gets its pre-visit (the cancelled
    # one never happened, so its entry does not hold back re-entry).
    assert notify(booking_id="B-3") == "booked"
    assert notify(event="no_show", booking_id="B-3") == "no_show"
    with nurture_app.sessions() as session:
        assert _where(session, contact) == [
            ("pre-visit", "exited", "cancelled"),
            ("rebooking-cancelled", "exited", "booked"),
            ("pre-visit", "exited", "no_show"),
            ("rebooking", "active", None),
        ]
        kinds = session.scalars(select(Event.kind).order_by(Event.id)).all()
    assert kinds == ["booked", "booked", "cancelled", "booked", "no_show"]


def test_no_consent_means_the_booking_is_recorded_and_nobody_is_enrolled(
    nurture_app: NurtureApp, make_contact: Any, client: Any, signing: Any, running: None
) -> None:
    contact = make_contact(email="quiet@example.com", email_consent=False)
    answer = _notify(client, signing, nurture_app, booking_id="B-7", email="quiet@example.com")
    assert answer.json() == {"status": "booked"}
    with nurture_app.sessions() as session:
        assert _where(session, contact) == []
        assert session.scalars(select(Event.kind)).all() == ["booked"]


def test_a_notice_with_a_naive_appointment_or_an_unknown_event_is_refused(
    nurture_app: NurtureApp, make_contact: Any, client: Any, signing: Any, running: None
) -> None:
    make_contact(email="ana@example.com")
    naive = _notify(client, signing, nurture_app, booking_id="B-1", email="ana@example.com",
                    appointment_at="2026-12-09T10:30:00")  # fmt: skip
    unknown = _notify(client, signing, nurture_app, event="checked_in", booking_id="B-1",
                      email="ana@example.com")  # fmt: skip
    assert naive.status_code == 422 and unknown.status_code == 422
    with nurture_app.sessions() as session:
        assert session.scalar(select(Event.id)) is None


def test_an_attended_visit_by_webhook_ends_the_pre_visit_once_in_the_apis_ledger(
    nurture_app: NurtureApp, make_contact: Any, client: Any, signing: Any, running: None
) -> None:
    contact = make_contact(email="mo@example.com")
    assert _notify(client, signing, nurture_app, booking_id="B-8",
                   email="mo@example.com").json() == {"status": "booked"}  # fmt: skip
    came = _notify(client, signing, nurture_app, event="attended", booking_id="B-8",
                   email="mo@example.com")  # fmt: skip
    assert came.status_code == 200 and came.json() == {"status": "attended"}
    again = _notify(client, signing, nurture_app, event="attended", booking_id="B-8",
                    email="mo@example.com")  # fmt: skip
    assert again.json() == {"status": "duplicate"}  # a retry: recorded once
    # The booking system also reports it through the API: the same ledger, the same event.
    with transaction(nurture_app.sessions) as session:
        secret = create_key(session, name="booking system", scope="write", created_by="t",
                            at=nurture_app.clock()).secret  # fmt: skip
    by_api = client.post(
        f"/api/v1/contacts/{contact}/events",
        json={"kind": "attended", "reference": "B-8"},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert by_api.json()["status"] == "duplicate"
    with nurture_app.sessions() as session:
        # The visit happened: the pre-visit ends, and nothing re-books someone who came.
        assert _where(session, contact) == [("pre-visit", "exited", "attended")]
        kinds = session.scalars(select(Event.kind).order_by(Event.id)).all()
    assert kinds == ["booked", "attended"]


def test_the_api_reacts_as_the_webhook_does_and_shares_its_ledger(
    nurture_app: NurtureApp, make_contact: Any, client: Any, signing: Any, running: None
) -> None:
    with transaction(nurture_app.sessions) as session:
        secret = create_key(session, name="booking system", scope="write", created_by="t",
                            at=nurture_app.clock()).secret  # fmt: skip
    writer = {"Authorization": f"Bearer {secret}"}
    contact = make_contact(email="lu@example.com")
    path = f"/api/v1/contacts/{contact}/events"
    booked = client.post(
        path,
        json={"kind": "booked", "reference": "B-5", "appointment_at": "2026-12-10T09:00:00-08:00"},
        headers=writer,
    )
    assert booked.status_code == 201, booked.text
    assert booked.json()["enrolled_campaigns"] == ["pre-visit"]
    no_show = client.post(path, json={"kind": "no_show", "reference": "B-5"}, headers=writer)
    assert no_show.json()["exited_campaigns"] == ["pre-visit"]
    assert no_show.json()["enrolled_campaigns"] == ["rebooking"]
    # The booking system also reports the no-show by webhook: the same event, recorded once.
    by_hook = _notify(client, signing, nurture_app, event="no_show", booking_id="B-5",
                      email="lu@example.com")  # fmt: skip
    assert by_hook.json() == {"status": "duplicate"}
    with nurture_app.sessions() as session:
        assert _where(session, contact) == [
            ("pre-visit", "exited", "no_show"),
            ("rebooking", "active", None),
        ]
        appointment = session.scalar(
            select(Enrollment.appointment_at).order_by(Enrollment.id).limit(1)
        )
    assert appointment == datetime(2026, 12, 10, 17, 0, tzinfo=UTC)


def test_a_launched_event_sequence_enrolls_nobody_on_later_ticks(
    nurture_app: NurtureApp, make_contact: Any, running: None
) -> None:
    make_contact()
    result = Planner(nurture_app.settings, nurture_app.sessions, nurture_app.clock).tick()
    assert result.enrolled == 0
    with nurture_app.sessions() as session:
        assert session.scalar(select(Enrollment.id)) is None


def test_a_visit_rebooked_by_api_or_webhook_moves_the_running_pre_visit(
    nurture_app: NurtureApp, make_contact: Any, client: Any, signing: Any, running: None
) -> None:
    with transaction(nurture_app.sessions) as session:
        secret = create_key(session, name="booking system", scope="write", created_by="t",
                            at=nurture_app.clock()).secret  # fmt: skip
    contact = make_contact(email="pia@example.com")
    path, writer = f"/api/v1/contacts/{contact}/events", {"Authorization": f"Bearer {secret}"}
    first = {"kind": "booked", "reference": "B-1", "appointment_at": "2026-12-10T09:00:00-08:00"}
    assert client.post(path, json=first, headers=writer).json()["enrolled_campaigns"] == [
        "pre-visit"
    ]
    moved = client.post(
        path,
        json={"kind": "booked", "reference": "B-2", "appointment_at": "2026-12-14T09:00:00-08:00"},
        headers=writer,
    ).json()
    assert (moved["enrolled_campaigns"], moved["moved_campaigns"]) == ([], ["pre-visit"])
    by_hook = _notify(client, signing, nurture_app, booking_id="B-3", email="pia@example.com",
                      appointment_at="2026-12-15T11:00:00-08:00")  # fmt: skip
    assert by_hook.json() == {"status": "booked"}
    with nurture_app.sessions() as session:
        assert _where(session, contact) == [("pre-visit", "active", None)]  # one entry
        visit = session.scalar(select(Enrollment.appointment_at))
    assert visit == datetime(2026, 12, 15, 19, 0, tzinfo=UTC)


def test_a_booking_moved_under_its_own_id_moves_the_visit_and_a_late_retry_does_not(
    nurture_app: NurtureApp,
    make_contact: Any,
    client: Any,
    signing: Any,
    running: None,
    frozen_clock: FrozenClock,
) -> None:
    contact = make_contact(email="ines@example.com")
    booked_at = nurture_app.clock().isoformat()
    original = {"booking_id": "B-1", "email": "ines@example.com", "booked_at": booked_at,
                "appointment_at": "2026-12-10T09:00:00-08:00"}  # fmt: skip
    assert _notify(client, signing, nurture_app, **original).json() == {"status": "booked"}
    frozen_clock.advance(minutes=30)
    moved = original | {"booked_at": nurture_app.clock().isoformat(),
                        "appointment_at": "2026-12-11T09:00:00-08:00"}  # fmt: skip
    assert _notify(client, signing, nurture_app, **moved).json() == {"status": "booked"}
    assert _notify(client, signing, nurture_app, **moved).json() == {"status": "duplicate"}
    frozen_clock.advance(minutes=3)  # the booking system retries its first notice, late
    assert _notify(client, signing, nurture_app, **original).json() == {"status": "duplicate"}
    with nurture_app.sessions() as session:
        assert _where(session, contact) == [("pre-visit", "active", None)]
        visit = session.scalar(select(Enrollment.appointment_at))
    assert visit == datetime(2026, 12, 11, 17, 0, tzinfo=UTC)
