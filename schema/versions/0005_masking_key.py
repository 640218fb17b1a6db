"""masking key

Revision ID: 0005_masking_key
Revises: 0004

The secret key of the families' masked codes, drawn from the operating system once and
never from the randomisation seed (a masked code keyed by the seed lets a blinded reader
test guesses of the seed offline, then replay every allocation).  Not audited, written
once: triggers refuse updates and deletes.  A database whose randomisation is already set
up gets a key now; its existing allocations keep the masked codes they have.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from noim.db import triggers
from noim.db.base import UTCDateTime
from noim.db.data_loss import refuse_data_loss

revision: str = "0005_masking_key"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "masking_key",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("key_hex", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_masking_key_single_row")),
        sa.CheckConstraint("length(key_hex) = 64", name=op.f("ck_masking_key_key_length")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_masking_key")),
    )
    set_up = op.get_bind().execute(sa.text("SELECT count(*) FROM randomisation_state")).scalar()
    if set_up:
        op.bulk_insert(
            table,
            [{"id": 1, "key_hex": secrets.token_hex(32), "created_at": datetime.now(UTC)}],
        )
    triggers.install(op, ["masking_key"])


def downgrade() -> None:
    refuse_data_loss(op, revision, tables=["masking_key"])
    triggers.remove(op, ["masking_key"])
    op.drop_table("masking_key")
