"""`nurture webhooks list`: the outbound webhooks editors registered on the dashboard
(/admin/webhooks, where they are added and removed), with how their deliveries stand."""

from __future__ import annotations

import typer

from nurture.cli.common import console, ready_app
from storage.db import transaction

app = typer.Typer(help="Outbound webhooks (registered at /admin/webhooks).", no_args_is_help=True)


@app.command("list")
def list_() -> None:
    """Endpoints, the events they get, their last delivery and their deliveries' counts."""
    from rich.markup import escape
    from rich.table import Table

    from staff.webhook_endpoints import delivery_counts, list_endpoints

    nurture = ready_app()
    states = ("waiting", "delivered", "given up")
    table = Table("id", "url", "events", "state", "last delivery", *states)
    with transaction(nurture.sessions, immediate=False) as session:
        counts = delivery_counts(session)
        for endpoint in list_endpoints(session):
            mine = counts.get(endpoint.id, {})
            table.add_row(
                str(endpoint.id),
                escape(endpoint.url),
                ", ".join(endpoint.event_types),
                "active" if endpoint.active else "deactivated",
                escape(endpoint.last_status or "none yet"),
                *(str(mine.get(state, 0)) for state in states),
            )
    console.print(table)
