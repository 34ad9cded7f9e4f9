"""webhook_deliveries.urgency and the claim's index (issue 16's follow-up to issue 19)

The deliverer claims due deliveries most urgent first (an opt-out, then other contact events and
staff's test events, then message events: storage.models.delivery_urgency). It sorted every due
row by a CASE over the event type on each claim, about 200 ms a claim with 100,000 due on SQLite
(a receiver down for a day during a campaign); the urgency is now stored with each delivery
and read in order off a partial index of the work still to do.

Revision ID: 0018
Revises: 0017
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STILL_TO_DO = sa.text("next_attempt_at IS NOT NULL")


def upgrade() -> None:
    # ADD COLUMN with a constant default: no table copy on SQLite, no rewrite on PostgreSQL 11+.
    op.add_column(
        "webhook_deliveries",
        sa.Column("urgency", sa.SmallInteger(), nullable=False, server_default=sa.text("2")),
    )
    op.execute(
        "UPDATE webhook_deliveries SET urgency = CASE "
        "WHEN event_type = 'contact.opted_out' THEN 0 "
        "WHEN event_type LIKE 'contact.%' OR event_type = 'webhook.test' THEN 1 "
        "ELSE 2 END"
    )
    op.create_index(
        "ix_webhook_delivery_claim",
        "webhook_deliveries",
        ["urgency", "next_attempt_at", "id"],
        sqlite_where=STILL_TO_DO,
        postgresql_where=STILL_TO_DO,
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_delivery_claim", table_name="webhook_deliveries")
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_column("urgency")
