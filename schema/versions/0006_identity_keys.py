"""identity keys

Revision ID: 0006_identity_keys
Revises: 0005_masking_key

The keys of the identity records' digests in the audit trail (noim.db.identity_audit):
from now on the audit trail holds names, addresses, phone numbers and health numbers
only as keyed digests, and erasing a person's details on request deletes their key.
Identity records that exist already get a key now.  Audit rows written before this
revision keep the values they hold (the chain cannot be rewritten): see docs/audit.md.
Deliberately no no-delete trigger: deleting a key is how an erasure is completed.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from noim.db.base import UTCDateTime
from noim.db.data_loss import refuse_data_loss

revision: str = "0006_identity_keys"
down_revision: str | Sequence[str] | None = "0005_masking_key"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_IDENTITY_TABLES = ("child_identities", "birth_parent_identities", "carer_identities")


def upgrade() -> None:
    table = op.create_table(
        "identity_keys",
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("row_key", sa.String(length=64), nullable=False),
        sa.Column("key_hex", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("length(key_hex) = 64", name=op.f("ck_identity_keys_key_length")),
        sa.PrimaryKeyConstraint("table_name", "row_key", name=op.f("pk_identity_keys")),
    )
    conn = op.get_bind()
    now = datetime.now(UTC)
    rows = [
        {
            "table_name": name,
            "row_key": str(row_id),
            "key_hex": secrets.token_hex(32),
            "created_at": now,
        }
        for name in _IDENTITY_TABLES
        for (row_id,) in conn.execute(sa.text(f"SELECT id FROM {name} ORDER BY id"))
    ]
    if rows:
        op.bulk_insert(table, rows)


def downgrade() -> None:
    refuse_data_loss(op, revision, tables=["identity_keys"])
    op.drop_table("identity_keys")
