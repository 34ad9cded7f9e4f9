"""enrollments: when a branch waiting for a click or a reply is looked at again (issue 18)

An enrollment waiting on a branch stays out of the planner's ready walk until then, instead of
being read (and on PostgreSQL locked) at every tick for the days it waits. NULL for everyone else.

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable ADD COLUMN: no table copy on SQLite, instant on PostgreSQL.
    op.add_column("enrollments", sa.Column("wait_until", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("enrollments") as batch:
        batch.drop_column("wait_until")
