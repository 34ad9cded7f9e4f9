"""The `nurture` command: every area's commands, and one place that maps errors to exit codes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from rich.markup import escape

from core.errors import NurtureError, ValidationFailed
from nurture.cli import (
    booking,
    campaigns,
    contacts,
    content,
    db,
    doctor,
    serve,
    status,
    users,
    versions,
    webhooks,
)
from nurture.cli.common import console, err_console, setup_logging
from nurture.cli.errors import one_line, safe_text

#: Everything Nurture writes holds patients' data: the database and its WAL, uploads, rejects
#: files, outbox messages, exports. Owner-only files (0600) and folders (0700), set once for the
#: process so the web server, worker and demo it starts (and their child processes) inherit it
#: (CCPA "reasonable security"; nothing for other local users to read).
PRIVATE_UMASK = 0o077

app = typer.Typer(
    name="nurture",
    help="Email and SMS nurture campaigns for Spinal Decompression LA.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.add_typer(contacts.app, name="contacts")
contacts.app.command("booked")(booking.booked)
contacts.app.command("cancelled")(booking.cancelled)
contacts.app.command("no-show")(booking.no_show)
contacts.app.command("attended")(booking.attended)
app.add_typer(campaigns.app, name="campaigns")
campaigns.app.command("validate")(content.validate)
campaigns.app.command("preview")(content.preview)
campaigns.app.command("upgrade")(versions.upgrade)
app.add_typer(versions.app, name="content")
app.command("sms-info")(content.sms_info)
app.add_typer(users.app, name="users")
app.add_typer(webhooks.app, name="webhooks")
app.command()(serve.worker)
app.command()(serve.web)
app.command()(serve.run)
app.command()(status.status)
app.command()(doctor.doctor)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    os.umask(PRIVATE_UMASK)
    setup_logging(verbose)


@app.command()
def demo(
    keep_serving: bool = typer.Option(
        False, help="Keep the web server and the scheduler running afterwards (Ctrl-C stops)."
    ),
    host: str = typer.Option("127.0.0.1", help="Web server address."),
    port: int = typer.Option(8000, help="Web server port."),
    folder: Path | None = typer.Option(
        None, help="Where the demo database and outbox go (default var/demo)."
    ),
) -> None:
    """Run the whole engine end to end on embedded defaults (SQLite, offline outbox)."""
    from nurture.demo import DEMO_FOLDER, run_demo

    result = run_demo(
        console, folder=folder or DEMO_FOLDER, host=host, port=port, keep_serving=keep_serving
    )
    if not result.finished:
        raise NurtureError("the demo sequence did not finish in time; see the log above")


def main() -> None:
    """Run the CLI; errors become one line and an exit code (nurture.cli.errors), usage errors
    click's message.

    Typer (standalone mode) prints usage errors itself and exits 2; everything else reaches us.
    A bug (an error nurture.cli.errors cannot explain) keeps its traceback.
    """
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        explained = one_line(exc)
        if explained is None:
            raise
        message, code = explained
        if isinstance(exc, ValidationFailed):
            for problem in exc.problems:
                _say(f"[red]✗[/red] {escape(safe_text(problem))}")
        else:
            _say(f"[red]error:[/red] {escape(safe_text(message))}")
        sys.exit(code)


def _say(markup: str) -> None:
    """One line on stderr, never wrapped to the terminal's width."""
    err_console.print(markup, highlight=False, soft_wrap=True)


if __name__ == "__main__":
    main()
