"""worker heartbeats: which workers are alive, for the dashboard and `nurture status`

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "worker_heartbeats",
        sa.Column("worker", sa.String(length=100), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=50), nullable=False),
        sa.Column("channels", sa.String(length=100), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("last_tick_at", sa.DateTime(), nullable=False),
        sa.Column("stopped_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("worker"),
    )
    op.create_index(
        "ix_worker_heartbeats_last_tick_at", "worker_heartbeats", ["last_tick_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_worker_heartbeats_last_tick_at", table_name="worker_heartbeats")
    op.drop_table("worker_heartbeats")
