"""`nurture users`: staff accounts for the dashboard (owners approve, editors change, viewers read).

The password is prompted for (hidden, asked twice), or read from --password-stdin or the
NURTURE_STAFF_PASSWORD environment variable for scripts; never from a command-line argument,
which other users of the machine can read in the process list.
"""

from __future__ import annotations

import os
import sys

import typer

from core.errors import InputError
from core.redact import mask_email, mask_phone
from nurture.app import NurtureApp
from nurture.cli.common import console, ready_app
from staff.roles import Role
from storage.db import transaction

# Each command imports staff.accounts (argon2, and a hash made on import): the worker process
# stays lean, it loads only what it runs.

app = typer.Typer(help="Staff accounts for the web dashboard.", no_args_is_help=True)
PASSWORD_ENV = "NURTURE_STAFF_PASSWORD"


def _password(from_stdin: bool) -> str:
    from staff import accounts

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif os.environ.get(PASSWORD_ENV):
        password = os.environ[PASSWORD_ENV]
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise InputError("no password given")
    accounts.check_password_strength(password)
    return password


@app.command("add")
def add(
    email: str = typer.Argument(..., help="The staff member's email address (their login)."),
    role: Role = typer.Option(
        ...,
        "--role",
        help="owner (approves and launches), editor (changes things) or viewer (reads).",
    ),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help=f"Read the password from stdin (or set {PASSWORD_ENV})."
    ),
    demo: bool = typer.Option(
        False,
        "--demo",
        help="Add it to the demo's database (var/demo, what `nurture demo` serves), not yours.",
    ),
) -> None:
    """Add a staff account."""
    from staff import accounts

    nurture = _demo_app() if demo else ready_app()  # a missing database before the prompt
    password = _password(password_stdin)
    with transaction(nurture.sessions) as session:
        accounts.add_user(session, email, password, role)
    console.print(f"added {mask_email(email)} as {role.value}")


def _demo_app() -> NurtureApp:
    """The demo's own database, as `nurture demo` names it (nurture.demo.demo_settings)."""
    from nurture.demo import existing_demo_app

    return existing_demo_app()


@app.command("list")
def list_() -> None:
    """List staff accounts, their roles and any lock."""
    from staff import accounts

    nurture = ready_app()
    with nurture.sessions() as session:
        users = accounts.list_users(session)
    if not users:
        console.print("no staff accounts yet: nurture users add EMAIL --role editor")
    for user in users:
        lock = f"  locked until {user.locked_until:%Y-%m-%d %H:%M} UTC" if user.locked_until else ""
        console.print(f"{user.email}  {user.role}{lock}", highlight=False)


@app.command("password")
def password(
    email: str = typer.Argument(..., help="The account's email address."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read it from stdin."),
) -> None:
    """Set a new password (ends the account's sessions and any lock)."""
    from staff import accounts

    new = _password(password_stdin)
    nurture = ready_app()
    with transaction(nurture.sessions) as session:
        accounts.set_password(session, email, new)
    console.print(f"password changed for {mask_email(email)}")


@app.command("role")
def role(
    email: str = typer.Argument(..., help="The account's email address."),
    new_role: Role = typer.Argument(..., metavar="ROLE", help="owner, editor or viewer."),
) -> None:
    """Change an account's role."""
    from staff import accounts

    nurture = ready_app()
    with transaction(nurture.sessions) as session:
        accounts.set_role(session, email, new_role)
    console.print(f"{mask_email(email)} is now {new_role.value}")


@app.command("phone")
def phone(
    email: str = typer.Argument(..., help="The account's email address."),
    number: str = typer.Argument("", help="Their own mobile number, e.g. (310) 555-0199."),
    clear: bool = typer.Option(False, "--clear", help="Remove the number from the account."),
) -> None:
    """Set the mobile number the editor's "Send me a test" texts (the staff member's own)."""
    from contacts.normalize import normalize_phone
    from staff import accounts

    if clear == bool(number.strip()):
        raise InputError("give the number, or --clear to remove it")
    normalized = None if clear else normalize_phone(number)
    nurture = ready_app()
    with transaction(nurture.sessions) as session:
        accounts.set_phone(session, email, normalized)
    shown = mask_phone(normalized) if normalized else "no number"
    console.print(f"{mask_email(email)}: test texts go to {shown}")


@app.command("unlock")
def unlock(email: str = typer.Argument(..., help="The account's email address.")) -> None:
    """Lift a lockout after too many failed sign-ins."""
    from staff import accounts

    nurture = ready_app()
    with transaction(nurture.sessions) as session:
        accounts.unlock(session, email)
    console.print(f"{mask_email(email)} unlocked")


@app.command("remove")
def remove(email: str = typer.Argument(..., help="The account's email address.")) -> None:
    """Remove an account (its sessions end at once)."""
    from staff import accounts

    nurture = ready_app()
    with transaction(nurture.sessions) as session:
        accounts.remove_user(session, email)
    console.print(f"removed {mask_email(email)}")
