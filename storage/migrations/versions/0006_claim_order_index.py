"""the planned-messages index carries the claim's whole order (channel, due_at, id)

A claim takes the oldest due messages in (due_at, id) order. SQLite's index entries end in the
rowid (the id), so (channel, due_at) already gave it that order; PostgreSQL's do not, so on a
campaign whose messages share a due time it read every planned message and sorted them, on
every claim (56 ms a claim at 100,000 planned, 0.5 ms with the id in the index).

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PLANNED = sa.text("state = 'planned'")


def _create(columns: list[str]) -> None:
    op.create_index(
        "ix_message_planned_channel_due",
        "messages",
        columns,
        unique=False,
        sqlite_where=PLANNED,
        postgresql_where=PLANNED,
    )


def upgrade() -> None:
    op.drop_index("ix_message_planned_channel_due", table_name="messages")
    _create(["channel", "due_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_message_planned_channel_due", table_name="messages")
    _create(["channel", "due_at"])
