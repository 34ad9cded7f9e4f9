"""`nurture campaigns`: list, launch and steer campaigns."""

from __future__ import annotations

from datetime import datetime

import typer
from rich.table import Table
from sqlalchemy import func, select

from campaigns import lifecycle
from campaigns.definitions import list_sequences, load_sequence
from nurture.cli.common import console, ready_app
from nurture.db import transaction
from nurture.errors import InputError
from nurture.models import Campaign, Message

app = typer.Typer(help="Campaigns: sequences sent to an audience.", no_args_is_help=True)


@app.command("list")
def list_() -> None:
    """Sequence definitions and their campaigns, with message counts."""
    nurture = ready_app()
    table = Table("name", "title", "steps", "state", "messages by state")
    with transaction(nurture.sessions) as session:
        campaigns = {c.name: c for c in session.scalars(select(Campaign))}
        for name in sorted(set(list_sequences()) | set(campaigns)):
            campaign = campaigns.get(name)
            counts = ""
            if campaign is not None:
                rows = session.execute(
                    select(Message.state, func.count())
                    .where(Message.campaign_id == campaign.id)
                    .group_by(Message.state)
                ).all()
                counts = ", ".join(f"{state} {count}" for state, count in sorted(rows))
            try:
                sequence = load_sequence(name)
                title, steps = sequence.title, str(len(sequence.steps))
            except Exception:
                title, steps = "(definition missing)", "?"
            table.add_row(
                name, title, steps, campaign.state if campaign else "not launched", counts
            )
    console.print(table)


def _parse_start(start: str | None) -> datetime | None:
    if start is None:
        return None
    try:
        value = datetime.fromisoformat(start)
    except ValueError:
        raise InputError(f"--start: not an ISO date and time: {start!r}") from None
    if value.tzinfo is None:
        raise InputError("--start needs a UTC offset, e.g. 2026-12-01T09:00-08:00")
    return value


@app.command()
def launch(
    name: str = typer.Argument(..., help="Sequence definition in campaigns/NAME.toml."),
    start: str | None = typer.Option(None, help="ISO start time with offset; default now."),
) -> None:
    """Launch a campaign: snapshot its definition and enroll its audience."""
    nurture = ready_app()
    sequence = load_sequence(name)
    with transaction(nurture.sessions) as session:
        campaign, enrolled = lifecycle.launch(
            session, sequence, now=nurture.clock(), starts_at=_parse_start(start)
        )
        console.print(
            f"[green]Launched {campaign.name}[/green]: {enrolled} contacts enrolled, "
            f"starting {campaign.starts_at:%Y-%m-%d %H:%M} UTC"
        )


@app.command()
def pause(name: str) -> None:
    """Pause: no new sends from the next tick on."""
    nurture = ready_app()
    with transaction(nurture.sessions) as session:
        lifecycle.pause(session, name, now=nurture.clock())
    console.print(f"Paused {name}")


@app.command()
def resume(name: str) -> None:
    """Resume a paused campaign; nothing already sent is sent again."""
    nurture = ready_app()
    with transaction(nurture.sessions) as session:
        lifecycle.resume(session, name)
    console.print(f"Resumed {name}")


@app.command()
def cancel(name: str) -> None:
    """Cancel for good: every unsent message is skipped."""
    nurture = ready_app()
    with transaction(nurture.sessions) as session:
        lifecycle.cancel(session, name, now=nurture.clock())
    console.print(f"Cancelled {name}")
