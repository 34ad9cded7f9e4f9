"""an index of suppressions by address hash, for the send-time checks

The dispatcher, the planner's exits and the export look suppressions up by address hash alone
(the hash covers the channel), which the (channel, address_hash) unique constraint cannot serve:
each lookup scanned the whole suppression list.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_suppression_address_hash", "suppressions", ["address_hash"])


def downgrade() -> None:
    op.drop_index("ix_suppression_address_hash", table_name="suppressions")
