"""`nurture campaigns review | approve | send-back | reviews`: review before launch at the console.

The CLI is an operator at the machine, with no sign-in, so a review step names who takes it:
`--as EMAIL`, a staff account (`nurture users add`) whose role decides what it may do (an owner
approves, an editor asks) and whose email is recorded. `nurture campaigns launch` takes `--as`
too; without it the operator launches as an editor would (approved content only, unless
`[review] editors_may_launch` is true). The rule itself is campaigns.review's, the dashboard's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from campaigns.definitions import load_sequence
from core.errors import InputError
from nurture.app import NurtureApp
from nurture.cli.common import console, ready_app
from storage.db import transaction

if TYPE_CHECKING:
    from campaigns.review import Reviewer

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


def request(
    name: str = typer.Argument(..., help="Sequence definition in campaigns/NAME.toml."),
    by: str = typer.Option(..., "--as", help=AS_HELP),
    note: str = typer.Option("", "--note", help="What changed, for the owner who reviews it."),
) -> None:
    """Ask an owner to review a sequence before it is launched."""
    from campaigns.review import request_review, short

    nurture = ready_app()
    sequence = load_sequence(name)
    who = reviewer(nurture, by)
    with transaction(nurture.sessions) as session:
        review = request_review(session, sequence, who, now=nurture.clock(), note=note)
        version = short(review.fingerprint)
    console.print(f"Review of {name} (version {version}) requested by {who.email}")


def approve(
    name: str = typer.Argument(..., help="Sequence definition in campaigns/NAME.toml."),
    by: str = typer.Option(..., "--as", help=AS_HELP),
    comment: str = typer.Option("", "--comment", help="A note kept with the approval."),
) -> None:
    """Approve a sequence's current content for launch (owners only)."""
    from campaigns import review

    nurture = ready_app()
    sequence = load_sequence(name)
    who = reviewer(nurture, by)
    with transaction(nurture.sessions) as session:
        decided = review.approve(session, sequence, who, now=nurture.clock(), comment=comment)
        version = review.short(decided.fingerprint)
    console.print(f"[green]Approved {name}[/green] (version {version}) by {who.email}")


def send_back(
    name: str = typer.Argument(..., help="Sequence definition in campaigns/NAME.toml."),
    by: str = typer.Option(..., "--as", help=AS_HELP),
    comment: str = typer.Option(..., "--comment", help="What should change."),
) -> None:
    """Send a sequence back to its editors with what should change (owners only)."""
    from campaigns import review

    nurture = ready_app()
    sequence = load_sequence(name)
    who = reviewer(nurture, by)
    with transaction(nurture.sessions) as session:
        review.send_back(session, sequence, who, now=nurture.clock(), comment=comment)
    console.print(f"Sent {name} back: {comment}")


def history(
    name: str = typer.Argument(..., help="Sequence definition in campaigns/NAME.toml."),
) -> None:
    """A sequence's reviews, newest first, and whether its current content is approved."""
    from rich.table import Table

    from campaigns import review

    nurture = ready_app()
    current = review.content_fingerprint(load_sequence(name))
    with nurture.sessions() as session:
        rows = review.reviews(session, name)
    table = Table("version", "decision", "asked by", "asked (UTC)", "decided by", "comment")
    for row in rows:
        table.add_row(
            review.short(row.fingerprint) + (" (current)" if row.fingerprint == current else ""),
            row.decision,
            row.requested_by,
            f"{row.requested_at:%Y-%m-%d %H:%M}",
            row.decided_by or "",
            row.comment,
        )
    console.print(table)
    console.print(f"Current content of {name}: version {review.short(current)}", highlight=False)
