"""Instruments, assessments, item responses and derived scores."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from noim.db.base import Base, VoidMixin, code_check, void_check
from noim.domain.codes import RESPONDENT_TYPES, RESPONSE_MISSING_REASONS


class Instrument(Base):
    """A questionnaire or rating at a given version (SDQ, BITSEA, PedsQL ...)."""

    __tablename__ = "instruments"
    __table_args__ = (UniqueConstraint("code", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    version: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(160))
    definition_sha256: Mapped[str] = mapped_column(String(64))


class Assessment(VoidMixin, Base):
    """One completion of an instrument for a child: who answered, when, at which timepoint."""

    __tablename__ = "assessments"
    __table_args__ = (
        code_check("respondent_type", RESPONDENT_TYPES),
        CheckConstraint(
            "respondent_carer_id IS NULL OR respondent_parent_id IS NULL", name="one_respondent"
        ),
        CheckConstraint(
            "respondent_type <> 'carer' OR respondent_parent_id IS NULL", name="carer_respondent"
        ),
        CheckConstraint(
            "respondent_type <> 'birth_parent' OR respondent_carer_id IS NULL",
            name="parent_respondent",
        ),
        void_check(),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(
        ForeignKey("children.id", ondelete="RESTRICT"), index=True
    )
    timepoint_code: Mapped[str] = mapped_column(ForeignKey("timepoints.code", ondelete="RESTRICT"))
    visit_id: Mapped[int | None] = mapped_column(
        ForeignKey("followup_visits.id", ondelete="RESTRICT"), index=True
    )
    instrument_id: Mapped[int] = mapped_column(ForeignKey("instruments.id", ondelete="RESTRICT"))
    form: Mapped[str | None] = mapped_column(String(16))
    respondent_type: Mapped[str] = mapped_column(String(16))
    respondent_carer_id: Mapped[int | None] = mapped_column(
        ForeignKey("carers.id", ondelete="RESTRICT")
    )
    respondent_parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("birth_parents.id", ondelete="RESTRICT")
    )
    assessed_on: Mapped[date] = mapped_column(Date)
    administered_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT")
    )
    out_of_window: Mapped[bool] = mapped_column(Boolean, default=False)
    #: set when the form is marked complete; later changes need a reason
    completed_at: Mapped[datetime | None] = mapped_column(default=None)


class ItemResponse(Base):
    """One item's answer: a value, or a reason it is missing (never both)."""

    __tablename__ = "item_responses"
    __table_args__ = (
        UniqueConstraint("assessment_id", "item"),
        CheckConstraint("item >= 1", name="item_positive"),
        CheckConstraint(
            "(value IS NULL AND missing_reason IS NOT NULL) OR "
            "(value IS NOT NULL AND missing_reason IS NULL)",
            name="value_or_missing_reason",
        ),
        code_check("missing_reason", RESPONSE_MISSING_REASONS, nullable=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    assessment_id: Mapped[int] = mapped_column(ForeignKey("assessments.id", ondelete="RESTRICT"))
    item: Mapped[int] = mapped_column(Integer)
    value: Mapped[float | None] = mapped_column(Float)
    missing_reason: Mapped[str | None] = mapped_column(String(16))


class DerivedScore(Base):
    """A scale score computed from an assessment's items, with the scoring rule's version."""

    __tablename__ = "derived_scores"
    __table_args__ = (UniqueConstraint("assessment_id", "scale"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    assessment_id: Mapped[int] = mapped_column(ForeignKey("assessments.id", ondelete="RESTRICT"))
    scale: Mapped[str] = mapped_column(String(32))
    score: Mapped[float | None] = mapped_column(Float)
    scoring_version: Mapped[str] = mapped_column(String(32))
    computed_at: Mapped[datetime]
