"""`nurture campaigns review | approve | send-back | reviews`: review before launch at the console.

The CLI is an operator at the machine, with no sign-in, so a review step names who takes it:
`--as EMAIL`, a staff account (`nurture users add`) whose role decides what it may do (an owner
approves, an editor asks) and whose email is recorded. What is reviewed is what a launch reads:
the sequence's stored current version (campaigns.content_store.launchable), else its file.
`nurture campaigns launch` and `upgrade` take `--as` too; without it the operator acts as an
editor would (approved content only, unless `[review] editors_may_launch` is true). The rule
itself is campaigns.review's, the dashboard's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from core.errors import InputError
from nurture.app import NurtureApp
from nurture.cli.common import console, ready_app
from storage.db import transaction

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from campaigns.definitions import Sequence
    from campaigns.review import Reviewer
    from storage.models import ContentVersion

#: Who launches from the console when no --as is given: an editor's rights, no account recorded.
CONSOLE_OPERATOR = "the console"

AS_HELP = "Your staff account's email (nurture users list); its role decides what you may do."


def reviewer(nurture: NurtureApp, email: str | None) -> Reviewer:
    """The staff account --as names, as a campaigns.review.Reviewer; the console operator (an
    editor's rights) without --as."""
    from campaigns.review import Reviewer
    from staff.accounts import find_user
    from staff.roles import Role

    if email is None:
        return Reviewer(CONSOLE_OPERATOR, Role.EDITOR)
    with nurture.sessions() as session:
        user = find_user(session, email)
        if user is None:
            raise InputError(f"--as {email}: no staff account with that email (nurture users list)")
        return Reviewer(user.email, user.role)


def to_review(session: Session, name: str) -> tuple[Sequence, ContentVersion | None]:
    """What a launch of `name` reads, so the review is of the same content."""
    from campaigns.content_store import launchable

    return launchable(session, name)


def request(
    name: str = typer.Argument(..., help="The sequence's name."),
    by: str = typer.Option(..., "--as", help=AS_HELP),
    note: str = typer.Option("", "--note", help="What changed, for the owner who reviews it."),
) -> None:
    """Ask an owner to review a sequence before it is launched."""
    from campaigns.review import label, request_review

    nurture = ready_app()
    who = reviewer(nurture, by)
    with transaction(nurture.sessions) as session:
        sequence, stored = to_review(session, name)
        review = request_review(
            session, sequence, who, now=nurture.clock(), note=note, version=stored
        )
        version = label(review.fingerprint, review.version)
    console.print(f"Review of {name} ({version}) requested by {who.email}")


def approve(
    name: str = typer.Argument(..., help="The sequence's name."),
    by: str = typer.Option(..., "--as", help=AS_HELP),
    comment: str = typer.Option("", "--comment", help="A note kept with the approval."),
) -> None:
    """Approve a sequence's current content for launch (owners only)."""
    from campaigns import review

    nurture = ready_app()
    who = reviewer(nurture, by)
    with transaction(nurture.sessions) as session:
        sequence, stored = to_review(session, name)
        decided = review.approve(
            session, sequence, who, now=nurture.clock(), comment=comment, version=stored
        )
        version = review.label(decided.fingerprint, decided.version)
    console.print(f"[green]Approved {name}[/green] ({version}) by {who.email}")


def send_back(
    name: str = typer.Argument(..., help="The sequence's name."),
    by: str = typer.Option(..., "--as", help=AS_HELP),
    comment: str = typer.Option(..., "--comment", help="What should change."),
) -> None:
    """Send a sequence back to its editors with what should change (owners only)."""
    from campaigns import review

    nurture = ready_app()
    who = reviewer(nurture, by)
    with transaction(nurture.sessions) as session:
        sequence, stored = to_review(session, name)
        review.send_back(
            session, sequence, who, now=nurture.clock(), comment=comment, version=stored
        )
    console.print(f"Sent {name} back: {comment}")


def history(
    name: str = typer.Argument(..., help="The sequence's name."),
) -> None:
    """A sequence's reviews, newest first, and whether its current content is approved."""
    from rich.table import Table

    from campaigns import review

    nurture = ready_app()
    with nurture.sessions() as session:
        sequence, stored = to_review(session, name)
        current = review.fingerprint_of(sequence, stored)
        number = stored.number if stored is not None else None
        rows = review.reviews(session, name)
    table = Table("version", "decision", "asked by", "asked (UTC)", "decided by", "comment")
    for row in rows:
        table.add_row(
            review.label(row.fingerprint, row.version)
            + (" (current)" if row.fingerprint == current else ""),
            row.decision,
            row.requested_by,
            f"{row.requested_at:%Y-%m-%d %H:%M}",
            row.decided_by or "",
            row.comment,
        )
    console.print(table)
    console.print(f"Current content of {name}: {review.label(current, number)}", highlight=False)
