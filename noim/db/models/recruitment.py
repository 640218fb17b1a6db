"""Screening log, consent and withdrawal."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from noim.db.base import Base, VoidMixin, code_check, void_check
from noim.domain.codes import CONSENTER_TYPES, WITHDRAWAL_LEVELS, WITHDRAWAL_REQUESTERS


class ScreeningEntry(VoidMixin, Base):
    """One family screened for the trial, whether or not it went on to take part."""

    __tablename__ = "screening_log"
    __table_args__ = (
        CheckConstraint("n_children >= 1", name="n_children_positive"),
        CheckConstraint("eligible OR ineligible_reason IS NOT NULL", name="ineligible_has_reason"),
        CheckConstraint("NOT declined OR declined_reason IS NOT NULL", name="declined_has_reason"),
        CheckConstraint("NOT declined OR eligible", name="declined_only_if_eligible"),
        CheckConstraint(
            "family_id IS NULL OR (eligible AND NOT declined)", name="enrolled_is_eligible"
        ),
        void_check(),
        # the screening log's pages: a site's entries newest first, read a page at a time
        Index("ix_screening_log_site_screened", "site_id", "screened_on", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"), index=True)
    local_authority_id: Mapped[int | None] = mapped_column(
        ForeignKey("local_authorities.id", ondelete="RESTRICT")
    )
    reference: Mapped[str | None] = mapped_column(String(32))
    screened_on: Mapped[date] = mapped_column(Date)
    n_children: Mapped[int] = mapped_column(Integer, default=1)
    eligible: Mapped[bool] = mapped_column(Boolean)
    ineligible_reason: Mapped[str | None] = mapped_column(Text)
    declined: Mapped[bool] = mapped_column(Boolean, default=False)
    declined_reason: Mapped[str | None] = mapped_column(Text)
    family_id: Mapped[int | None] = mapped_column(
        ForeignKey("families.id", ondelete="RESTRICT"), unique=True
    )


class Consent(VoidMixin, Base):
    """Consent given for a child: by whom, on which form version, when."""

    __tablename__ = "consents"
    __table_args__ = (
        code_check("consenter_type", CONSENTER_TYPES),
        CheckConstraint(
            "consenter_type <> 'birth_parent' OR birth_parent_id IS NOT NULL",
            name="birth_parent_named",
        ),
        CheckConstraint("consenter_type <> 'carer' OR carer_id IS NOT NULL", name="carer_named"),
        void_check(),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(
        ForeignKey("children.id", ondelete="RESTRICT"), index=True
    )
    consenter_type: Mapped[str] = mapped_column(String(16))
    birth_parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("birth_parents.id", ondelete="RESTRICT")
    )
    carer_id: Mapped[int | None] = mapped_column(ForeignKey("carers.id", ondelete="RESTRICT"))
    scope: Mapped[str] = mapped_column(String(32), default="participation")
    form_version: Mapped[str] = mapped_column(String(32))
    consented_on: Mapped[date] = mapped_column(Date)
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))


class Withdrawal(VoidMixin, Base):
    """A withdrawal, at one of three levels: intervention only, further follow-up, use of data."""

    __tablename__ = "withdrawals"
    __table_args__ = (
        code_check("level", WITHDRAWAL_LEVELS),
        code_check("requested_by", WITHDRAWAL_REQUESTERS),
        void_check(),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(
        ForeignKey("children.id", ondelete="RESTRICT"), index=True
    )
    withdrawn_on: Mapped[date] = mapped_column(Date)
    level: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
