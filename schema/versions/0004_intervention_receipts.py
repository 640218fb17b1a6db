"""intervention receipts

Revision ID: 0004
Revises: 0003_freezes

Receipt of the allocated intervention: one live record per randomised family
(a partial unique index), corrections voiding the record they replace; protected
by the no-delete triggers like every noim table.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from noim.db import triggers
from noim.db.data_loss import refuse_data_loss

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003_freezes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = "voided_at IS NULL"


def upgrade() -> None:
    op.create_table(
        "intervention_receipts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("family_id", sa.Integer(), nullable=False),
        sa.Column("received", sa.Boolean(), nullable=False),
        sa.Column("started_on", sa.Date(), nullable=True),
        sa.Column("reason", sa.String(length=24), nullable=True),
        sa.Column("details", sa.Text(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=False),
        sa.Column("corrects_id", sa.Integer(), nullable=True),
        sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("void_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "reason <> 'other' OR details IS NOT NULL",
            name=op.f("ck_intervention_receipts_other_has_details"),
        ),
        sa.CheckConstraint(
            "reason IS NULL OR reason IN ('declined', 'not_engaged', 'left_care', "
            "'moved_away', 'service_unavailable', 'withdrawn', 'other')",
            name=op.f("ck_intervention_receipts_reason_code"),
        ),
        sa.CheckConstraint(
            "(received AND started_on IS NOT NULL AND reason IS NULL AND details IS NULL) OR "
            "(NOT received AND started_on IS NULL AND reason IS NOT NULL)",
            name=op.f("ck_intervention_receipts_received_or_reason"),
        ),
        sa.CheckConstraint(
            "(voided_at IS NULL AND void_reason IS NULL) OR "
            "(voided_at IS NOT NULL AND void_reason IS NOT NULL)",
            name=op.f("ck_intervention_receipts_void_has_reason"),
        ),
        sa.ForeignKeyConstraint(
            ["corrects_id"],
            ["intervention_receipts.id"],
            name=op.f("fk_intervention_receipts_corrects_id_intervention_receipts"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["family_id"],
            ["families.id"],
            name=op.f("fk_intervention_receipts_family_id_families"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"],
            ["users.id"],
            name=op.f("fk_intervention_receipts_recorded_by_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intervention_receipts")),
    )
    op.create_index(
        op.f("ix_intervention_receipts_family_id"),
        "intervention_receipts",
        ["family_id"],
        unique=False,
    )
    op.create_index(
        "uq_intervention_receipts_live_family",
        "intervention_receipts",
        ["family_id"],
        unique=True,
        sqlite_where=sa.text(_LIVE),
        postgresql_where=sa.text(_LIVE),
    )
    triggers.install(op, ["intervention_receipts"])


def downgrade() -> None:
    refuse_data_loss(op, revision, tables=["intervention_receipts"])
    triggers.remove(op, ["intervention_receipts"])
    op.drop_index("uq_intervention_receipts_live_family", table_name="intervention_receipts")
    op.drop_index(op.f("ix_intervention_receipts_family_id"), table_name="intervention_receipts")
    op.drop_table("intervention_receipts")
