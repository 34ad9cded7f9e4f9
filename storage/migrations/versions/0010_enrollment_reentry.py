"""enrollments: an entry number (a contact may enter an event-started sequence again) and the
appointment an event-started enrollment is about

A sequence started by a booking event (campaigns.triggers) may take the same contact again after
its `reenter_after`: each entry is its own row with its own messages, so the unique pair becomes
(campaign, contact, entry); every existing row is entry 0, as a launch enrolls.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.errors import NurtureError

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("enrollments") as batch:
        batch.add_column(sa.Column("entry", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("appointment_at", sa.DateTime(), nullable=True))
        batch.drop_constraint("uq_enrollment", type_="unique")
        batch.create_unique_constraint("uq_enrollment", ["campaign_id", "contact_id", "entry"])


def downgrade() -> None:
    """Refused, with nothing changed, once anyone entered a sequence again: the old unique
    (campaign, contact) pair cannot hold a second entry, and deleting those entries with their
    messages (sent history included) is data loss a downgrade should not do silently."""
    reentries = op.get_bind().scalar(sa.text("SELECT count(*) FROM enrollments WHERE entry > 0"))
    if reentries:
        raise NurtureError(
            f"cannot downgrade below 0010: {reentries} enrollment(s) are a contact's second or "
            "later entry into a sequence (enrollments.entry > 0), which the older schema's "
            "one-entry-per-campaign rule cannot hold. Restore a backup taken before upgrading, "
            "or delete those enrollments and their messages yourself, then downgrade again"
        )
    with op.batch_alter_table("enrollments") as batch:
        batch.drop_constraint("uq_enrollment", type_="unique")
        batch.create_unique_constraint("uq_enrollment", ["campaign_id", "contact_id"])
        batch.drop_column("appointment_at")
        batch.drop_column("entry")
