"""launch_reviews: the content version's number a review was of (issue 20)

A review of a sequence in the content store is of one stored version: its fingerprint is that
version's content hash, and its number is kept beside it, so the record reads "version 3
approved by owner@...". NULL for a review of a sequence's files (no stored version).

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable ADD COLUMN: no table copy on SQLite, instant on PostgreSQL.
    op.add_column("launch_reviews", sa.Column("version", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("launch_reviews") as batch:
        batch.drop_column("version")
