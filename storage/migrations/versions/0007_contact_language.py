"""a language on each contact ("en" or "es"; more by adding template folders)

Existing contacts read English, as they always have; the server default fills them in place.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN on both databases (no table copy): a NOT NULL column with a constant
    # default is allowed by SQLite's ALTER TABLE and instant on PostgreSQL 11+.
    op.add_column(
        "contacts",
        sa.Column("language", sa.String(length=8), nullable=False, server_default="en"),
    )


def downgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("language")
