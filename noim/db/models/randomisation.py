"""Allocations (one per family, never updated or deleted) and post-randomisation exclusions."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from noim.db.base import Base, VoidMixin, code_check, void_check
from noim.domain.codes import RANDOMISATION_METHODS


class Allocation(Base):
    """A family's allocated arm.  The database refuses updates and deletes of these rows."""

    __tablename__ = "allocations"
    __table_args__ = (
        code_check("method", RANDOMISATION_METHODS),
        CheckConstraint("sequence_number > 0", name="sequence_positive"),
    )
    __arm_columns__ = ("arm_code",)

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(
        ForeignKey("families.id", ondelete="RESTRICT"), unique=True
    )
    arm_code: Mapped[str] = mapped_column(ForeignKey("arms.code", ondelete="RESTRICT"))
    method: Mapped[str] = mapped_column(String(16))
    stratum: Mapped[str] = mapped_column(String(128))
    factors: Mapped[dict[str, Any]] = mapped_column(JSON)
    sequence_number: Mapped[int] = mapped_column(Integer, unique=True)
    masked_code: Mapped[str] = mapped_column(String(16), unique=True)
    randomised_at: Mapped[datetime]
    randomised_by_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))


class PostRandomisationExclusion(VoidMixin, Base):
    """A family (or one child) found ineligible after randomisation; the allocation stays."""

    __tablename__ = "post_randomisation_exclusions"
    __table_args__ = (void_check(),)

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(
        ForeignKey("families.id", ondelete="RESTRICT"), index=True
    )
    #: NULL when the whole family is excluded
    child_id: Mapped[int | None] = mapped_column(ForeignKey("children.id", ondelete="RESTRICT"))
    identified_on: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)
    decided_by_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
