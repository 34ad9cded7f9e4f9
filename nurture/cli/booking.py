"""`nurture contacts booked|cancelled|no-show|attended EMAIL|PHONE`: staff record at the desk or on
the phone what the booking system would otherwise tell us: a booking (with its visit time, or a
new time for a visit moved), a cancellation, a no-show or a visit that happened.

Every command goes through campaigns.booking.record_booking_event, as the booking webhook and the
REST API do: one ledger (a `--reference` reported by another path is recorded once) and the same
reactions (the nurture ends on booking; pre-visit and re-booking sequences start and end).
`booked --event KIND` says the same for scripts that hold the kind in a variable.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast
from zoneinfo import ZoneInfo

import typer

from core.errors import InputError
from core.redact import mask_address
from nurture.cli.common import console, ready_app
from storage.db import transaction

if TYPE_CHECKING:
    from campaigns.triggers import BookingEvent

_KINDS = ("booked", "cancelled", "no_show", "attended")
_DONE = {
    "booked": "marked booked",
    "cancelled": "booking cancelled",
    "no_show": "missed visit recorded",
    "attended": "visit recorded as attended",
}

_WHO = typer.Argument(..., help="The contact's email address or phone number.")
_REFERENCE = typer.Option(
    None, "--reference", help="The booking system's id: an event is recorded once per id."
)


def booked(
    email_or_phone: str = _WHO,
    event: str = typer.Option(
        "booked", "--event", help="What happened: booked, cancelled, no_show or attended."
    ),
    visit: str | None = typer.Option(
        None,
        "--visit",
        help="When the visit is, e.g. '2026-12-09 10:30' (the contact's time zone unless an "
        "offset is given). A new time for the same person moves their visit reminder.",
    ),
    reference: str | None = _REFERENCE,
) -> None:
    """Mark a contact as booked: they leave every nurture sequence before its next step, and
    enter a running pre-visit sequence if they may (the booking webhook's rule)."""
    record(email_or_phone, _kind(event), visit=visit, reference=reference)


def cancelled(email_or_phone: str = _WHO, reference: str | None = _REFERENCE) -> None:
    """The contact cancelled their visit: the pre-visit ends, a re-booking sequence may start."""
    record(email_or_phone, "cancelled", reference=reference)


def no_show(email_or_phone: str = _WHO, reference: str | None = _REFERENCE) -> None:
    """The contact missed their visit: the pre-visit sequence ends, a re-booking one may start."""
    record(email_or_phone, "no_show", reference=reference)


def attended(email_or_phone: str = _WHO, reference: str | None = _REFERENCE) -> None:
    """The contact came to their visit: the pre-visit sequence ends."""
    record(email_or_phone, "attended", reference=reference)


def record(
    email_or_phone: str, kind: str, *, visit: str | None = None, reference: str | None = None
) -> None:
    # Imported here (phonenumbers): the worker process stays lean, it loads only what it runs.
    from campaigns.booking import find_contact, record_booking_event

    if visit is not None and kind != "booked":
        raise InputError("--visit goes with a booking (--event booked)")
    if reference is not None and not reference.strip():
        raise InputError("--reference is empty: give the booking system's id, or leave it out")
    nurture = ready_app()
    with transaction(nurture.sessions) as session:
        contact = find_contact(session, email_or_phone)
        booked_before = contact.booked_at is not None
        result = record_booking_event(
            session,
            contact,
            cast("BookingEvent", kind),  # one of _KINDS: the commands name it, or _kind checked it
            at=nurture.clock(),
            source="staff (command line)",
            reference=reference.strip() if reference else None,
            appointment_at=_visit(visit, contact.timezone) if visit else None,
        )
    who = mask_address(email_or_phone.strip())
    if result.status == "duplicate":
        console.print(f"{who}: this {kind} was recorded before (same reference); nothing changed.")
        return
    if kind == "booked" and booked_before:
        console.print(f"{who} was already marked booked; recorded this booking too.")
    else:
        console.print(f"{who} {_DONE[kind]}.")
    if result.exited_campaigns:
        console.print("Left: " + ", ".join(result.exited_campaigns))
    if result.enrolled_campaigns:
        console.print("Started: " + ", ".join(result.enrolled_campaigns))
    if result.moved_campaigns:
        console.print("Visit moved in: " + ", ".join(result.moved_campaigns))


def _kind(text: str) -> str:
    kind = text.strip().lower().replace("-", "_").replace(" ", "_")
    if kind not in _KINDS:
        raise InputError(f"unknown event {text!r}: give booked, cancelled, no_show or attended")
    return kind


def _visit(text: str, zone: str) -> datetime:
    """The visit's time in UTC; a time without an offset is the contact's local time."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            f"--visit {text!r} is not a date and time: write it as 2026-12-09 10:30"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment.astimezone(UTC)
