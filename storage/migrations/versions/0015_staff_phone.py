"""staff_users.phone: the staff member's own mobile number, for test texts from the editor

"Send me a test" sends a text step to the signed-in staff member's own phone (issue 20); they
type it once beside the button and it is kept on their account, never anyone else's.

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("staff_users", sa.Column("phone", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_column("phone")
