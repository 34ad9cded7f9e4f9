"""`nurture campaigns`: list, launch and steer campaigns."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

import typer
from sqlalchemy import func, select

from campaigns.definitions import list_sequences, load_sequence
from campaigns.state import CampaignStatus
from core.errors import InputError
from core.redact import mask_address
from nurture.cli import review as review_commands
from nurture.cli.common import console, ready_app
from scheduler.attention import Resolution, needing_attention, resolve
from storage.db import transaction
from storage.models import Campaign, Contact, Message

if TYPE_CHECKING:
    from scheduler.simulate import BranchRates

# Each command imports what it uses (the lifecycle, the simulator, rich's tables and progress
# bars): the worker process stays lean, it loads only what it runs.

app = typer.Typer(help="Campaigns: sequences sent to an audience.", no_args_is_help=True)

app.command("review")(review_commands.request)
app.command("approve")(review_commands.approve)
app.command("send-back")(review_commands.send_back)
app.command("reviews")(review_commands.history)

#: How far `simulate` may look ahead: a year covers any sequence, and the projection's date
#: arithmetic stays far from the calendar's end.
SIMULATE_DAYS = (0.1, 366)


@app.command("list")
def list_() -> None:
    """Sequence definitions and their campaigns, with message counts."""
    from rich.table import Table

    from campaigns.state import campaign_statuses

    nurture = ready_app()
    table = Table("name", "title", "steps", "state", "messages by state")
    with transaction(nurture.sessions) as session:
        campaigns = {c.name: c for c in session.scalars(select(Campaign))}
        statuses = campaign_statuses(session, campaigns.values(), now=nurture.clock())
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
            state = statuses[campaign.id] if campaign else CampaignStatus.NOT_LAUNCHED
            table.add_row(name, title, steps, str(state), counts)
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
    name: str = typer.Argument(
        ..., help="A stored sequence (its current version), or a .toml file's path."
    ),
    start: str | None = typer.Option(None, help="ISO start time with offset; default now."),
    by: str | None = typer.Option(
        None, "--as", help="Your staff account's email: an owner's launch records its approval."
    ),
) -> None:
    """Launch a campaign: snapshot its definition and enroll its audience.

    Its content must be approved by an owner (`campaigns approve`), unless an owner launches
    (--as) or `[review] editors_may_launch` is true (campaigns.review)."""
    from campaigns import review
    from campaigns.content_store import launchable

    nurture = ready_app()
    who = review_commands.reviewer(nurture, by)
    with transaction(nurture.sessions) as session, _enrolling() as progress:
        sequence, version = launchable(session, name)  # the stored current version, pinned
        campaign, enrolled = review.launch(
            session,
            sequence,
            who,
            now=nurture.clock(),
            starts_at=_parse_start(start),
            settings=nurture.settings,
            progress=progress,
            version=version,
        )
        console.print(
            f"[green]Launched {campaign.name}[/green]: {enrolled} contacts enrolled, "
            f"starting {campaign.starts_at:%Y-%m-%d %H:%M} UTC"
        )


@contextmanager
def _enrolling() -> Iterator[Callable[[int, int], None]]:
    """A progress bar over the audience's contact ids while a launch enrolls them."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("Enrolling the audience"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("enroll", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@app.command()
def pause(name: str) -> None:
    """Pause: no new sends from the next tick on."""
    from campaigns import lifecycle

    nurture = ready_app()
    with transaction(nurture.sessions) as session:
        lifecycle.pause(session, name, now=nurture.clock())
    console.print(f"Paused {name}")


@app.command()
def resume(name: str) -> None:
    """Resume a paused campaign; nothing already sent is sent again."""
    from campaigns import lifecycle

    nurture = ready_app()
    with transaction(nurture.sessions) as session:
        lifecycle.resume(session, name)
    console.print(f"Resumed {name}")


@app.command()
def cancel(name: str) -> None:
    """Cancel for good: every unsent message is skipped."""
    from campaigns import lifecycle

    nurture = ready_app()
    with transaction(nurture.sessions) as session:
        lifecycle.cancel(session, name, now=nurture.clock())
    console.print(f"Cancelled {name}")


@app.command()
def simulate(
    name: str = typer.Argument(
        ..., help="Sequence definition (or a launched campaign) to project."
    ),
    days: float = typer.Option(
        7, "--days", help=f"How many days ahead ({SIMULATE_DAYS[0]:g} to {SIMULATE_DAYS[1]})."
    ),
    start: str | None = typer.Option(None, help="ISO start with offset; default now."),
    contacts: bool = typer.Option(False, "--contacts", help="One row per message, not grouped."),
    click_rate: float | None = typer.Option(
        None, "--click-rate", help="Percent taking a `clicked` branch (default: so far, or 10)."
    ),
    reply_rate: float | None = typer.Option(
        None, "--reply-rate", help="Percent taking a `replied` branch (default: so far, or 5)."
    ),
) -> None:
    """What would be sent when, over the next days; sends nothing and changes nothing."""
    from collections import Counter
    from zoneinfo import ZoneInfo

    from rich.table import Table

    from campaigns.definitions import Sequence
    from scheduler.projection import project

    low, high = SIMULATE_DAYS
    if not low <= days <= high:  # also refuses nan
        raise InputError(f"--days must be between {low:g} and {high} days, not {days:g}")
    nurture = ready_app()
    settings = nurture.settings
    zone = ZoneInfo(settings.clinic.default_timezone)
    with transaction(nurture.sessions, immediate=False) as session:
        campaign = session.scalar(select(Campaign).where(Campaign.name == name))
        if campaign is not None:
            sequence = Sequence.from_snapshot(campaign.definition)
        else:
            sequence = load_sequence(name)
        projection = project(
            session,
            sequence,
            campaign,
            settings=settings,
            now=nurture.clock(),
            days=days,
            start=_parse_start(start),
            rates=_branch_rates(click_rate, reply_rate),
        )
        rows = projection.rows
        addresses = (
            {
                contact_id: (email, phone)
                for contact_id, email, phone in session.execute(
                    select(Contact.id, Contact.email, Contact.phone).where(
                        Contact.id.in_({row.contact_id for row in rows})
                    )
                )
            }
            if contacts
            else {}
        )
    where = _projected_as(projection.status)
    title = f"{name}: the next {days:g} days {where}; times in {zone.key}; nothing is sent"
    if contacts:
        table = Table("when", "step", "channel", "to", "outcome", title=title)
        for row in rows:
            email, phone = addresses.get(row.contact_id, (None, None))
            table.add_row(
                f"{row.at.astimezone(zone):%a %b %d %H:%M}",
                row.step,
                row.channel,
                mask_address(email if row.channel == "email" else phone),
                row.skipped or "send",
            )
    else:
        groups = Counter(
            (row.at.astimezone(zone).strftime("%a %b %d %H:00"), row.step, row.channel, row.skipped)
            for row in rows
        )
        table = Table("hour", "step", "channel", "messages", "outcome", title=title)
        for (hour, step, channel, skipped), count in groups.items():
            table.add_row(hour, step, channel, f"{count:,}", skipped or "send")
    console.print(table)
    would = projection.would_send
    console.print(f"{would:,} would be sent, {len(rows) - would:,} skipped")
    moved = Counter(row.state_rule for row in rows if row.state_rule and not row.skipped)
    if moved:  # contacts.state_rules: Florida, Oklahoma, Maryland
        states = ", ".join(f"{state} {count:,}" for state, count in sorted(moved.items()))
        console.print(
            f"{moved.total():,} text(s) moved later by state rules ({states}): "
            "08:00-20:00 local and three a day"
        )
    if projection.branches:  # issue 18: each branch with the share expected on it
        from scheduler.simulate import branch_lines

        console.print("Branches (shares of the contacts reaching each):")
        for line in branch_lines(sequence, projection.branches):
            console.print(f"  {line}", markup=False, highlight=False)


def _branch_rates(click: float | None, reply: float | None) -> BranchRates | None:
    """--click-rate / --reply-rate in percent; None: the campaign's own so far, else assumed."""
    from scheduler.simulate import BranchRates

    if click is None and reply is None:
        return None
    for name, value in (("--click-rate", click), ("--reply-rate", reply)):
        if value is not None and not 0 <= value <= 100:  # also refuses nan
            raise InputError(f"{name} is a percentage from 0 to 100, not {value:g}")
    default = BranchRates()
    clicked = default.clicked if click is None else click / 100
    replied = default.replied if reply is None else reply / 100
    if clicked + replied > 1:
        raise InputError("--click-rate and --reply-rate add up to more than 100")
    return BranchRates(clicked, replied, "as given")


def _projected_as(status: CampaignStatus) -> str:
    """The same words as the dashboard's projection page."""
    if status == CampaignStatus.PAUSED:
        return "(paused: as if resumed now)"
    if status == CampaignStatus.CANCELLED:
        return "(cancelled: it will send nothing)"
    if status.launchable:
        return "(not launched: as if launched now)"
    return "from now"


@app.command()
def uncertain() -> None:
    """Messages whose outcome is unknown (a crash between the send and its record).

    They are never re-sent on their own: check the provider's log, then `campaigns resolve`."""
    from rich.table import Table

    nurture = ready_app()
    with transaction(nurture.sessions, immediate=False) as session:
        rows = needing_attention(session)
    if not rows:
        console.print("No message needs attention.")
        return
    table = Table("message", "campaign", "step", "channel", "to", "since (UTC)", "why")
    for row in rows:
        table.add_row(
            str(row.message_id),
            row.campaign,
            str(row.step_index),
            row.channel,
            row.to,
            f"{row.since:%Y-%m-%d %H:%M}",
            row.error[:80],
        )
    console.print(table)


@app.command("resolve")
def resolve_(
    message_id: int = typer.Argument(..., help="Id shown by `campaigns uncertain`."),
    how: Resolution = typer.Option(..., "--as", help="sent | resend | skip"),
) -> None:
    """Settle an uncertain message after checking the provider's log."""
    nurture = ready_app()
    with transaction(nurture.sessions) as session:
        resolve(session, message_id, how, now=nurture.clock(), by="cli")
    console.print(f"Message {message_id} resolved as {how}")
