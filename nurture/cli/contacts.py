"""`nurture contacts`: import, export, find, show, suppress and forget contacts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from sqlalchemy import select

from contacts.suppressions import active_suppression
from contacts.suppressions import suppress as add_suppression
from core.errors import InputError, NotFound
from nurture.cli.common import console, ready_app
from storage.db import transaction
from storage.models import (
    Campaign,
    Channel,
    ConsentEvent,
    Contact,
    Enrollment,
    SuppressionReason,
)

# Each command imports what it uses (the importer, phonenumbers, rich's tables): the worker process
# stays lean, it loads only what it runs.
if TYPE_CHECKING:
    from contacts.importer import ImportSummary

app = typer.Typer(help="Contacts, consent and suppressions.", no_args_is_help=True)


@app.command("import")
def import_(
    file: Path = typer.Argument(..., help="CSV file to import."),
    source: str = typer.Option(..., "--source", help="Where these contacts came from."),
    mapping: Path | None = typer.Option(
        None, "--mapping", help="TOML file: our field = their column."
    ),
    column: list[str] = typer.Option(
        [], "--column", help="our_field=Their Header (repeatable; custom.NAME for custom fields)."
    ),
    partial: bool = typer.Option(
        False, "--partial", help="Import what can be read and reject lines in a wrong encoding."
    ),
    encoding: str | None = typer.Option(None, help="File encoding if not UTF-8, e.g. cp1252."),
) -> None:
    """Import contacts from a CSV; rejected rows go to NAME.rejects.csv beside the file."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from contacts.columns import ColumnMapping
    from contacts.importer import import_csv

    for given in (file, mapping):
        if given is not None and not given.is_file():
            raise NotFound(f"no file {given}")
    base = ColumnMapping.from_file(mapping) if mapping else None
    columns = ColumnMapping.from_options(column, base) if column or base else None
    nurture = ready_app()
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        task: TaskID = progress.add_task("Checking the file", total=None)

        def started(summary: ImportSummary) -> None:
            progress.update(task, description="Importing", total=summary.total_rows)

        summary = import_csv(
            nurture.sessions, file, source,
            default_timezone=nurture.settings.clinic.default_timezone,
            progress=lambda n: progress.advance(task, n), on_start=started,
            mapping=columns, partial=partial, encoding=encoding, clock=nurture.clock,
        )  # fmt: skip
    _print_summary(file, summary)


def _print_summary(file: Path, summary: ImportSummary) -> None:
    from rich.table import Table

    mapped = Table("column in the file", "imported as", title=f"Columns of {file.name}")
    for header, meaning in summary.columns:
        mapped.add_row(header, meaning if meaning != "ignored" else "[dim]ignored[/dim]")
    console.print(mapped)
    counts = Table("rows", "count", title="Import summary")
    counts.add_row("inserted (new contacts)", f"{summary.inserted:,}")
    counts.add_row("updated (something added)", f"{summary.updated:,}")
    counts.add_row("unchanged", f"{summary.unchanged:,}")
    counts.add_row("rejected", f"[red]{summary.rejected:,}[/red]" if summary.rejected else "0")
    counts.add_row("suppressions kept", f"{summary.suppressions_kept:,}")
    if summary.sms_without_evidence:
        counts.add_row(
            "SMS 'yes' without evidence (not opted in)", f"{summary.sms_without_evidence:,}"
        )
    if summary.consent_kept:
        counts.add_row("opt-ins refused (opted out earlier)", f"{summary.consent_kept:,}")
    console.print(counts)
    if summary.rejects_path:
        console.print(
            f"Rejected rows, each with its line number and reason: {summary.rejects_path}"
        )


@app.command()
def export(
    file: Path = typer.Argument(Path("-"), help="Where to write the CSV ('-' for the screen)."),
    tag: str | None = typer.Option(None, help="Only contacts with this tag."),
    consent: str | None = typer.Option(None, help="Only contacts opted in on email or sms."),
) -> None:
    """Export contacts with consent (and its evidence) and suppression state, as CSV."""
    from contacts.export import ExportFilter, export_csv, export_to_file

    if consent not in (None, "email", "sms"):
        raise InputError("--consent must be email or sms")
    which = ExportFilter(tag=tag, consent=consent)
    nurture = ready_app()
    with transaction(nurture.sessions, immediate=False) as session:
        if str(file) == "-":
            count = export_csv(session, sys.stdout, which)
            return
        count = export_to_file(session, file, which)
    console.print(f"Exported {count:,} contacts to {file} (readable by you only).")


@app.command()
def show(ref: str = typer.Argument(..., help="Contact id, email or phone.")) -> None:
    """One contact: details, tags, custom fields, consent history and suppressions."""
    from rich.table import Table

    from contacts.search import find_contact

    nurture = ready_app()
    with transaction(nurture.sessions, immediate=False) as session:
        contact = find_contact(session, ref)
        details = Table.grid(padding=(0, 2))
        name = f"{contact.first_name} {contact.last_name}".strip() or "(no name)"
        rows = [
            ("contact", f"#{contact.id} {name}"),
            ("email", contact.email or "-"),
            ("phone", contact.phone or "-"),
            ("time zone", contact.timezone),
            ("source", contact.source or "-"),
            ("tags", ", ".join(contact.tags) or "-"),
            ("email consent", contact.email_consent or "never given"),
            ("sms consent", contact.sms_consent or "never given"),
            ("booked", f"{contact.booked_at:%Y-%m-%d %H:%M} UTC" if contact.booked_at else "no"),
        ]
        if contact.erased_at:
            rows.append(("forgotten", f"{contact.erased_at:%Y-%m-%d %H:%M} UTC"))
        for channel in Channel:
            address = contact.address(channel)
            row = active_suppression(session, channel, address) if address else None
            state = (
                f"[red]suppressed[/red] ({row.reason}, {row.created_at:%Y-%m-%d})" if row else "no"
            )
            if contact.erased_at and not address:
                state = "address erased; its suppression is kept as a hash"
            rows.append((f"{channel} suppressed", state))
        rows += [(f"custom.{k}", str(v)) for k, v in sorted((contact.custom_fields or {}).items())]
        for label, value in rows:
            details.add_row(f"[bold]{label}[/bold]", value)
        console.print(details)
        ledger = Table(
            "when (UTC)", "channel", "status", "source", "evidence", title="Consent ledger"
        )
        events = session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.contact_id == contact.id)
            .order_by(ConsentEvent.occurred_at, ConsentEvent.id)
        )
        for event in events:
            ledger.add_row(f"{event.occurred_at:%Y-%m-%d %H:%M}", event.channel, event.status,
                           event.source, event.evidence)  # fmt: skip
        console.print(ledger)
        enrolled = session.execute(
            select(Campaign.name, Enrollment.state, Enrollment.exit_reason)
            .join(Campaign, Campaign.id == Enrollment.campaign_id)
            .where(Enrollment.contact_id == contact.id)
        ).all()
        if enrolled:
            console.print(
                "Campaigns: "
                + ", ".join(f"{n} ({s}{', ' + r if r else ''})" for n, s, r in enrolled)
            )


@app.command()
def search(
    text: str = typer.Argument("", help="Part of a name, email or phone number."),
    tag: str | None = typer.Option(None, help="Only contacts with this tag."),
    consent: str | None = typer.Option(None, help="Only contacts opted in on email or sms."),
    limit: int = typer.Option(50, min=1, max=10_000, help="Show at most this many."),
) -> None:
    """Find contacts by name, email, phone digits, tag or consent."""
    from rich.table import Table

    from contacts.search import Search, search_contacts

    nurture = ready_app()
    with transaction(nurture.sessions, immediate=False) as session:
        found, total = search_contacts(session, Search(text, tag, consent, limit=limit))
        title = f"{total:,} contacts match" + (f" (first {limit})" if total > limit else "")
        table = Table("id", "name", "email", "phone", "zone", "tags", "email", "sms", title=title)
        for c in found:
            table.add_row(str(c.id), f"{c.first_name} {c.last_name}".strip(), c.email or "",
                          c.phone or "", c.timezone, ", ".join(c.tags),
                          _consent_mark(c.email_consent), _consent_mark(c.sms_consent))  # fmt: skip
    console.print(table)


def _consent_mark(state: str | None) -> str:
    return {"opted_in": "[green]in[/green]", "opted_out": "[red]out[/red]"}.get(state or "", "-")


@app.command()
def suppress(
    address: str = typer.Argument(..., help="Email address or phone number to stop sending to."),
    reason: SuppressionReason = typer.Option(SuppressionReason.MANUAL, help="Why."),
    note: str = typer.Option("staff (command line)", help="Who or what asked, for the record."),
) -> None:
    """Stop all sending to an address now (contact or not); only the person can undo it."""
    from contacts.optout import opt_out

    channel, normal = _address(address)
    nurture = ready_app()
    with transaction(nurture.sessions) as session:
        contact = session.scalar(
            select(Contact).where(getattr(Contact, _column(channel)) == normal)
        )
        if contact is not None:
            newly = opt_out(
                session, contact, channel, reason=reason, source=note, at=nurture.clock()
            )
        else:
            newly = add_suppression(
                session, channel, normal, reason, source=note, at=nurture.clock()
            )
    who = f"contact #{contact.id}" if contact else "no contact yet; future imports"
    if newly:
        console.print(f"Suppressed {channel} {normal} ({reason}); {who} will not be sent to.")
    else:
        console.print(f"{channel} {normal} was already suppressed; nothing changed.")


def _address(text: str) -> tuple[Channel, str]:
    from contacts.normalize import normalize_email, normalize_phone

    if "@" in text:
        return Channel.EMAIL, normalize_email(text)
    return Channel.SMS, normalize_phone(text)


def _column(channel: Channel) -> str:
    return "email" if channel == Channel.EMAIL else "phone"


@app.command()
def forget(
    ref: str = typer.Argument(..., help="Contact id, email or phone."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    requested_by: str = typer.Option("staff (command line)", help="Who asked, for the record."),
) -> None:
    """Erase a person's data on request, keeping only a hashed suppression."""
    from contacts.forget import forget_contact
    from contacts.search import find_contact

    nurture = ready_app()
    with transaction(nurture.sessions) as session:
        contact = find_contact(session, ref)
        if not yes:
            typer.confirm(
                f"Erase contact #{contact.id} ({contact.first_name} {contact.last_name}) for good?",
                abort=True,
            )
        result = forget_contact(
            session,
            contact,
            requested_by=requested_by,
            now=nurture.clock(),
            files=nurture.personal_files,
        )
    console.print(
        f"Contact #{result.contact_id} forgotten: personal data erased; "
        f"{', '.join(result.suppressed) or 'no'} address(es) kept only as a hash so they stay "
        f"unsubscribed; {result.messages_skipped} planned message(s) skipped."
    )


@app.command("purge-signups")
def purge_signups() -> None:
    """Forget sign-ups nobody confirmed within signup.unconfirmed_days now (every worker also
    does it hourly): their pending evidence, and the contacts they alone created."""
    nurture = ready_app()
    days = nurture.settings.signup.unconfirmed_days
    removed = nurture.purge_unconfirmed_signups()
    console.print(f"{removed} unconfirmed sign-up contact(s) older than {days} days removed.")
