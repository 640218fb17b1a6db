"""Placements, legal proceedings and legal events / court and hearing decisions."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from noim.db.base import Base, VoidMixin, code_check, date_order_check, void_check
from noim.domain.codes import (
    JURISDICTIONS,
    LEGAL_EVENT_KINDS,
    PERMANENCE_OUTCOMES,
    PLACEMENT_END_REASONS,
    PLACEMENT_TYPES,
    PROCEEDINGS_KINDS,
)
from noim.domain.legal import ANY_JURISDICTION


class DecisionType(Base):
    """The legal vocabulary: one row per event or decision type, per jurisdiction."""

    __tablename__ = "decision_types"
    __table_args__ = (
        code_check("jurisdiction", (*JURISDICTIONS, ANY_JURISDICTION)),
        code_check("kind", LEGAL_EVENT_KINDS),
        code_check("permanence_outcome", PERMANENCE_OUTCOMES, nullable=True),
    )

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    jurisdiction: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(160))
    statute: Mapped[str | None] = mapped_column(String(160))
    ssda903_code: Mapped[str | None] = mapped_column(String(8))
    permanence_outcome: Mapped[str | None] = mapped_column(String(16))
    entry_route: Mapped[bool] = mapped_column(Boolean, default=False)
    sort_order: Mapped[int] = mapped_column(Integer)


class Placement(VoidMixin, Base):
    """Where a child lived from ``start_date`` to ``end_date``; moves are counted from these."""

    __tablename__ = "placements"
    __table_args__ = (
        code_check("placement_type", PLACEMENT_TYPES),
        code_check("end_reason", PLACEMENT_END_REASONS, nullable=True),
        date_order_check("start_date", "end_date"),
        void_check(),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(
        ForeignKey("children.id", ondelete="RESTRICT"), index=True
    )
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    placement_type: Mapped[str] = mapped_column(String(16))
    carer_id: Mapped[int | None] = mapped_column(ForeignKey("carers.id", ondelete="RESTRICT"))
    local_authority_id: Mapped[int | None] = mapped_column(
        ForeignKey("local_authorities.id", ondelete="RESTRICT")
    )
    end_reason: Mapped[str | None] = mapped_column(String(24))


class LegalProceedings(VoidMixin, Base):
    """Care proceedings (England) or a Children's Hearing referral (Scotland), with its dates."""

    __tablename__ = "legal_proceedings"
    __table_args__ = (
        code_check("jurisdiction", JURISDICTIONS),
        code_check("kind", PROCEEDINGS_KINDS),
        date_order_check("started_on", "ended_on"),
        void_check(),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(
        ForeignKey("children.id", ondelete="RESTRICT"), index=True
    )
    jurisdiction: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(24))
    started_on: Mapped[date] = mapped_column(Date)
    ended_on: Mapped[date | None] = mapped_column(Date)
    court_or_panel: Mapped[str | None] = mapped_column(String(128))


class LegalEvent(VoidMixin, Base):
    """A dated legal event or decision (order made, hearing, return home, re-entry to care)."""

    __tablename__ = "legal_events"
    __table_args__ = (void_check(),)

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(
        ForeignKey("children.id", ondelete="RESTRICT"), index=True
    )
    proceedings_id: Mapped[int | None] = mapped_column(
        ForeignKey("legal_proceedings.id", ondelete="RESTRICT"), index=True
    )
    event_type_code: Mapped[str] = mapped_column(
        ForeignKey("decision_types.code", ondelete="RESTRICT")
    )
    event_date: Mapped[date] = mapped_column(Date)
    notes: Mapped[str | None] = mapped_column(Text)
