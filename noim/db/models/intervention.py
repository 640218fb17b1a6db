"""Receipt of the allocated intervention: one current record per randomised family."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from noim.db.base import Base, VoidMixin, code_check, void_check
from noim.domain.codes import INTERVENTION_NOT_RECEIVED_REASONS


class InterventionReceipt(VoidMixin, Base):
    """Whether a randomised family received the service it was allocated to.

    At most one live (not voided) row per family (a partial unique index): a correction
    voids the current row with the correction's reason and adds the corrected one, which
    names the row it corrects (``corrects_id``), so the history stays in the table.
    """

    __tablename__ = "intervention_receipts"
    #: masked in audit histories for blinded roles: the start of the allocated service and
    #: the free text (details, a correction's reason) could reveal the arm
    __arm_columns__ = ("started_on", "details", "void_reason")
    __table_args__ = (
        code_check("reason", INTERVENTION_NOT_RECEIVED_REASONS, nullable=True),
        CheckConstraint(
            "(received AND started_on IS NOT NULL AND reason IS NULL AND details IS NULL) OR "
            "(NOT received AND started_on IS NULL AND reason IS NOT NULL)",
            name="received_or_reason",
        ),
        CheckConstraint("reason <> 'other' OR details IS NOT NULL", name="other_has_details"),
        void_check(),
        Index(
            "uq_intervention_receipts_live_family",
            "family_id",
            unique=True,
            sqlite_where=text("voided_at IS NULL"),
            postgresql_where=text("voided_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(
        ForeignKey("families.id", ondelete="RESTRICT"), index=True
    )
    received: Mapped[bool] = mapped_column(Boolean)
    started_on: Mapped[date | None] = mapped_column(Date)
    reason: Mapped[str | None] = mapped_column(String(24))
    details: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime]
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    corrects_id: Mapped[int | None] = mapped_column(
        ForeignKey("intervention_receipts.id", ondelete="RESTRICT")
    )
