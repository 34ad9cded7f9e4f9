"""enrollments: the path a contact took through a sequence's branches (issue 18)

"first-visit:otherwise" and the like, comma-separated in the order decided; NULL for a sequence
without branches. A partial index (campaign, path) where it is set answers the funnel's branch
rows, and costs nothing to an enrollment that never branches.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable ADD COLUMN: no table copy on SQLite, instant on PostgreSQL.
    op.add_column("enrollments", sa.Column("path", sa.String(length=500), nullable=True))
    op.create_index(
        "ix_enrollment_campaign_path",
        "enrollments",
        ["campaign_id", "path"],
        sqlite_where=sa.text("path IS NOT NULL"),
        postgresql_where=sa.text("path IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_enrollment_campaign_path", table_name="enrollments")
    with op.batch_alter_table("enrollments") as batch:
        batch.drop_column("path")
