"""`nurture contacts booked EMAIL|PHONE`: staff record a booking made by phone or at the desk."""

from __future__ import annotations

import typer

from core.redact import mask_address
from nurture.cli.common import console, ready_app
from storage.db import transaction


def booked(
    email_or_phone: str = typer.Argument(..., help="The contact's email address or phone number."),
) -> None:
    """Mark a contact as booked: they leave every nurture sequence before its next step, and
    enter a running pre-visit sequence if they may (the booking webhook's rule)."""
    # Imported here (phonenumbers): the worker process stays lean, it loads only what it runs.
    from campaigns.booking import find_contact, record_booking_event

    nurture = ready_app()
    with transaction(nurture.sessions) as session:
        contact = find_contact(session, email_or_phone)
        booked_before = contact.booked_at is not None
        result = record_booking_event(
            session, contact, "booked", at=nurture.clock(), source="staff (command line)"
        )
    who = mask_address(email_or_phone.strip())
    if booked_before:
        console.print(f"{who} was already marked booked; recorded this booking too.")
    else:
        console.print(f"{who} marked booked.")
    if result.exited_campaigns:
        console.print("Left: " + ", ".join(result.exited_campaigns))
    if result.enrolled_campaigns:
        console.print("Started: " + ", ".join(result.enrolled_campaigns))
