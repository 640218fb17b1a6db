"""Serious adverse events, protocol deviations and loss to follow-up."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from noim.db.base import Base, VoidMixin, code_check, date_order_check, void_check
from noim.domain.codes import DEVIATION_SEVERITIES, SAE_CATEGORIES, SAE_OUTCOMES, SAE_RELATEDNESS


class SeriousAdverseEvent(VoidMixin, Base):
    __tablename__ = "serious_adverse_events"
    __table_args__ = (
        code_check("category", SAE_CATEGORIES),
        code_check("relatedness", SAE_RELATEDNESS, nullable=True),
        code_check("outcome", SAE_OUTCOMES, nullable=True),
        date_order_check("onset_date", "reported_on"),
        void_check(),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(
        ForeignKey("children.id", ondelete="RESTRICT"), index=True
    )
    onset_date: Mapped[date] = mapped_column(Date)
    reported_on: Mapped[date] = mapped_column(Date)
    category: Mapped[str] = mapped_column(String(24))
    description: Mapped[str] = mapped_column(Text)
    relatedness: Mapped[str | None] = mapped_column(String(16))
    expected: Mapped[bool | None] = mapped_column(Boolean)
    outcome: Mapped[str | None] = mapped_column(String(16))
    completed_at: Mapped[datetime | None] = mapped_column(default=None)


class ProtocolDeviation(VoidMixin, Base):
    __tablename__ = "protocol_deviations"
    __table_args__ = (code_check("severity", DEVIATION_SEVERITIES), void_check())

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(
        ForeignKey("families.id", ondelete="RESTRICT"), index=True
    )
    child_id: Mapped[int | None] = mapped_column(ForeignKey("children.id", ondelete="RESTRICT"))
    occurred_on: Mapped[date] = mapped_column(Date)
    category: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(8))
    description: Mapped[str] = mapped_column(Text)


class LossToFollowUp(VoidMixin, Base):
    """A child the team can no longer reach (distinct from a withdrawal, which is a choice)."""

    __tablename__ = "losses_to_follow_up"
    __table_args__ = (date_order_check("last_contact_on", "declared_on"), void_check())

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(
        ForeignKey("children.id", ondelete="RESTRICT"), index=True
    )
    declared_on: Mapped[date] = mapped_column(Date)
    last_contact_on: Mapped[date | None] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)
