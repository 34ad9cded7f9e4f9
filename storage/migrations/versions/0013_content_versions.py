"""content versions: sequences and their template files stored as immutable versions; a
campaign pins the version it runs, each planned message the version it was planned with

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "content_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.String(length=100), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("definition_text", sa.Text(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sequence", "number", name="uq_content_version"),
    )
    op.create_table(
        "content_files",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=255), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["content_versions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("version_id", "path"),
    )
    # A plain ADD COLUMN (no table copy: the messages table is the big one): SQLite accepts a
    # nullable column with REFERENCES in ALTER TABLE; PostgreSQL adds the constraint after it.
    for table in ("campaigns", "messages"):
        if op.get_bind().dialect.name == "sqlite":
            op.execute(
                f"ALTER TABLE {table} ADD COLUMN content_version_id INTEGER "
                "REFERENCES content_versions (id)"
            )
        else:
            op.add_column(table, sa.Column("content_version_id", sa.Integer(), nullable=True))
            op.create_foreign_key(
                f"fk_{table}_content_version",
                table,
                "content_versions",
                ["content_version_id"],
                ["id"],
            )


def downgrade() -> None:
    for table in ("messages", "campaigns"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("content_version_id")
    op.drop_table("content_files")
    op.drop_table("content_versions")
