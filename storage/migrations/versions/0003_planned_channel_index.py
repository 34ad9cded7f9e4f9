"""an index of planned messages per channel and due time, for the dispatcher's claims

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PLANNED = sa.text("state = 'planned'")


def upgrade() -> None:
    op.create_index(
        "ix_message_planned_channel_due",
        "messages",
        ["channel", "due_at"],
        unique=False,
        sqlite_where=PLANNED,
        postgresql_where=PLANNED,
    )


def downgrade() -> None:
    op.drop_index("ix_message_planned_channel_due", table_name="messages")
