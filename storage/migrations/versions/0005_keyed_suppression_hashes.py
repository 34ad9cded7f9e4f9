"""suppression hashes keyed with the server's secret

Suppression rows kept an unsalted sha256("channel:address"), which brute-forces in minutes for
a US phone number, so a forgotten person's number could be recovered from the list. The stored
hash becomes HMAC-SHA256(key, old hex digest) with a key derived from the server's secret
(core.suppression_hash). Because the HMAC is taken over the old digest, each row is converted in
place without knowing its address, and every existing suppression still matches its address.

The hasher comes from Alembic's config attributes (storage.db.alembic_config, which the app's
migrate and `nurture db upgrade` fill in). Without it this migration refuses to run on a table
that has rows rather than leave hashes nothing would match again (an empty table needs no key).
It cannot be undone: a keyed hash does not turn back into the plain digest.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from core.errors import ConfigError
from core.suppression_hash import HASHER_KEY, SuppressionHasher

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SUPPRESSIONS = sa.table(
    "suppressions", sa.column("id", sa.Integer), sa.column("address_hash", sa.String)
)


def upgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.select(_SUPPRESSIONS.c.id, _SUPPRESSIONS.c.address_hash)).all()
    if not rows:
        return
    hasher = context.config.attributes.get(HASHER_KEY)
    if not isinstance(hasher, SuppressionHasher):
        raise ConfigError(
            "migration 0005 re-keys the suppression list and needs the server's secret key: "
            "run `nurture db upgrade` with NURTURE_SECRET_KEY set (or the key file beside "
            "the SQLite database)"
        )
    connection.execute(
        _SUPPRESSIONS.update()
        .where(_SUPPRESSIONS.c.id == sa.bindparam("b_id"))
        .values(address_hash=sa.bindparam("b_hash")),
        [{"b_id": row_id, "b_hash": hasher.rekey(str(digest))} for row_id, digest in rows],
    )


def downgrade() -> None:
    raise ConfigError(
        "migration 0005 cannot be undone: keyed suppression hashes do not turn back into plain "
        "sha256 digests (restore a backup taken before the upgrade instead)"
    )
