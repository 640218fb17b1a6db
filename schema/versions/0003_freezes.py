"""data freeze datasets

Revision ID: 0003_freezes
Revises: 0002

The analysis datasets a data freeze stores (written once), and data freezes made
append-only (no update, no delete).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from noim.db import triggers
from noim.db.data_loss import refuse_data_loss

revision: str = "0003_freezes"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "data_freeze_datasets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("freeze_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["freeze_id"],
            ["data_freezes.id"],
            name=op.f("fk_data_freeze_datasets_freeze_id_data_freezes"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_freeze_datasets")),
        sa.UniqueConstraint(
            "freeze_id", "name", name=op.f("uq_data_freeze_datasets_freeze_id_name")
        ),
    )
    triggers.remove(op, ["data_freezes"])
    triggers.install(op, ["data_freezes", "data_freeze_datasets"])


def downgrade() -> None:
    refuse_data_loss(op, revision, tables=["data_freeze_datasets"])
    triggers.remove(op, ["data_freezes", "data_freeze_datasets"])
    op.drop_table("data_freeze_datasets")
    # data_freezes back to "no delete" only (the no-update trigger is not in 0002)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER noim_no_delete BEFORE DELETE ON data_freezes FOR EACH ROW "
            f"EXECUTE FUNCTION noim_refuse_change('{triggers.NO_DELETE_WHY}')"
        )
        op.execute(
            "CREATE TRIGGER noim_no_truncate BEFORE TRUNCATE ON data_freezes FOR EACH "
            f"STATEMENT EXECUTE FUNCTION noim_refuse_change('{triggers.NO_DELETE_WHY}')"
        )
    else:
        op.execute(
            "CREATE TRIGGER trg_data_freezes_no_delete BEFORE DELETE ON data_freezes BEGIN "
            "SELECT RAISE(ABORT, 'noim: DELETE on table data_freezes is not allowed: "
            f"{triggers.NO_DELETE_WHY}'); END"
        )
