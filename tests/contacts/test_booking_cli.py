"""`nurture contacts booked|cancelled|no-show|attended` (and `booked --event KIND`): staff record
what happened to a visit through campaigns.booking.record_booking_event, as the booking webhook
and the API do; bad input is one line with its exit code, and records nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from campaigns.booking import record_booking_event
from campaigns.definitions import load_sequence
from campaigns.lifecycle import launch
from nurture.app import NurtureApp
from nurture.cli import booking as booking_cli
from nurture.cli.errors import one_line
from nurture.cli.main import app as cli
from storage.db import transaction
from storage.models import Campaign, Contact, Enrollment, Event


@pytest.fixture
def staff(nurture_app: NurtureApp, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`nurture contacts ...` on the test app (its frozen clock), the event sequences running."""
    with transaction(nurture_app.sessions) as session:
        for name in ("pre-visit", "rebooking", "rebooking-cancelled"):
            launch(
                session, load_sequence(name), now=nurture_app.clock(), settings=nurture_app.settings
            )
    monkeypatch.setattr(booking_cli, "ready_app", lambda: nurture_app)

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, ["contacts", *args])

    return run


def _where(app: NurtureApp, contact_id: int) -> list[tuple[str, str, str | None]]:
    with app.sessions() as session:
        rows = session.execute(
            select(Campaign.name, Enrollment.state, Enrollment.exit_reason)
            .join(Campaign, Campaign.id == Enrollment.campaign_id)
            .where(Enrollment.contact_id == contact_id)
            .order_by(Enrollment.id)
        )
        return [(row.name, row.state, row.exit_reason) for row in rows]


def _kinds(app: NurtureApp) -> list[str]:
    with app.sessions() as session:
        return list(session.scalars(select(Event.kind).order_by(Event.id)))


def test_booked_with_a_local_visit_time_then_cancelled_and_booked_again(
    nurture_app: NurtureApp, make_contact: Any, staff: Any
) -> None:
    contact = make_contact(email="rosa@example.com", timezone="America/New_York")
    booked = staff("booked", "Rosa@Example.com", "--visit", "2026-12-09 10:30")
    assert booked.exit_code == 0, booked.output
    assert "R***@Example.com marked booked." in booked.output
    assert "Started: pre-visit" in booked.output and "rosa@example.com" not in booked.output
    with nurture_app.sessions() as session:
        visit = session.scalar(select(Enrollment.appointment_at))
    assert visit == datetime(2026, 12, 9, 15, 30, tzinfo=UTC)  # 10:30 in New York
    cancelled = staff("cancelled", "rosa@example.com")
    assert cancelled.exit_code == 0, cancelled.output
    assert "booking cancelled" in cancelled.output
    assert (
        "Left: pre-visit" in cancelled.output and "Started: rebooking-cancelled" in cancelled.output
    )
    again = staff("booked", "rosa@example.com", "--visit", "2026-12-16T09:00:00-05:00")
    assert "already marked booked" in again.output and "Left: rebooking-cancelled" in again.output
    assert _where(nurture_app, contact) == [
        ("pre-visit", "exited", "cancelled"),
        ("rebooking-cancelled", "exited", "booked"),
        ("pre-visit", "active", None),
    ]
    assert _kinds(nurture_app) == ["booked", "cancelled", "booked"]


def test_a_new_visit_time_moves_the_running_pre_visit(
    nurture_app: NurtureApp, make_contact: Any, staff: Any
) -> None:
    make_contact(email="ines@example.com")  # Los Angeles
    assert staff("booked", "ines@example.com", "--visit", "2026-12-09 10:30").exit_code == 0
    moved = staff("booked", "ines@example.com", "--visit", "2026-12-11 16:00")
    assert moved.exit_code == 0 and "Visit moved in: pre-visit" in moved.output
    with nurture_app.sessions() as session:
        visits = session.scalars(select(Enrollment.appointment_at)).all()
    assert visits == [datetime(2026, 12, 12, 0, 0, tzinfo=UTC)]  # one entry, the new time


@pytest.mark.parametrize(
    ("args", "kind", "started"),
    [
        (("no-show",), "no_show", "rebooking"),
        (("booked", "--event", "no-show"), "no_show", "rebooking"),
        (("attended",), "attended", None),
        (("booked", "--event", "attended"), "attended", None),
        (("booked", "--event", "Cancelled"), "cancelled", "rebooking-cancelled"),
    ],
)
def test_a_no_show_or_an_attended_visit_by_its_command_or_by_event(
    nurture_app: NurtureApp,
    make_contact: Any,
    staff: Any,
    args: tuple[str, ...],
    kind: str,
    started: str | None,
) -> None:
    contact = make_contact(phone="+13105550177", sms=True)
    assert staff("booked", "(310) 555-0177").exit_code == 0
    result = staff(args[0], "310-555-0177", *args[1:])
    assert result.exit_code == 0, result.output
    assert "0177" in result.output and "3105550177" not in result.output  # masked
    assert "Left: pre-visit" in result.output
    assert (f"Started: {started}" in result.output) if started else "Started" not in result.output
    assert _where(nurture_app, contact)[0] == ("pre-visit", "exited", kind)
    assert _kinds(nurture_app) == ["booked", kind]


def test_an_event_another_path_recorded_is_recorded_once(
    nurture_app: NurtureApp, make_contact: Any, staff: Any
) -> None:
    contact = make_contact(email="li@example.com")
    with transaction(nurture_app.sessions) as session:  # the booking webhook's own call
        record_booking_event(
            session, session.get_one(Contact, contact), "no_show", at=nurture_app.clock(),
            source="booking webhook", reference="B-9",
        )  # fmt: skip
    result = staff("no-show", "li@example.com", "--reference", "B-9")
    assert result.exit_code == 0 and "recorded before" in result.output
    assert _kinds(nurture_app) == ["no_show"]


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("booked", "nobody@example.com"), 66, "no contact with that email address or phone"),
        (("cancelled", "12345"), 65, "invalid phone"),
        (("booked", "  "), 65, "give an email address or a phone number"),
        (("booked", "eva@example.com", "--event", "rescheduled"), 65, "unknown event"),
        (("booked", "eva@example.com", "--visit", "next tuesday"), 65, "not a date and time"),
        (
            ("booked", "eva@example.com", "--event", "attended", "--visit", "2026-12-09 10:00"),
            65,
            "--visit goes with a booking",
        ),
        (("attended", "eva@example.com", "--reference", " "), 65, "--reference is empty"),
    ],
)
def test_bad_input_is_one_line_and_records_nothing(
    nurture_app: NurtureApp,
    make_contact: Any,
    staff: Any,
    args: tuple[str, ...],
    code: int,
    says: str,
) -> None:
    make_contact(email="eva@example.com")
    result = staff(*args)
    assert result.exit_code != 0 and result.exception is not None
    explained = one_line(result.exception)  # what `nurture` prints (nurture.cli.main.main)
    assert explained is not None, result.exception
    message, exit_code = explained
    assert exit_code == code and says in message and "\n" not in message
    assert _kinds(nurture_app) == []
