"""freeze salt

Revision ID: 0007_freeze_salt
Revises: 0006_identity_keys

A secret random salt per data freeze, hashed before each dataset's canonical text: a
blinded reader who knows every column of a small trial's dataset but the arm could
otherwise hash each possible arm coding and compare it with the hashes a freeze shows.
Freezes made before this revision keep their unsalted hashes (salt NULL).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from noim.db import triggers
from noim.db.data_loss import refuse_data_loss

revision: str = "0007_freeze_salt"
down_revision: str | Sequence[str] | None = "0006_identity_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("data_freezes") as batch:
        batch.add_column(sa.Column("salt", sa.String(length=64), nullable=True))


def downgrade() -> None:
    refuse_data_loss(op, revision, columns=[("data_freezes", "salt")])
    with op.batch_alter_table("data_freezes") as batch:
        batch.drop_column("salt")
    if op.get_bind().dialect.name == "sqlite":  # the rebuilt table lost its triggers
        triggers.install(op, ["data_freezes"])
