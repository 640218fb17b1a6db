"""Follow-up visits scheduled from the trial definition's timepoints."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from noim.db.base import Base, VoidMixin, code_check, void_check
from noim.domain.codes import VISIT_STATUSES


class FollowUpVisit(VoidMixin, Base):
    """A child's visit at a timepoint: target date and window from the anchor, and what happened.

    Stored statuses are scheduled, completed, missed and not_required; "due",
    "overdue", "completed in window" and "completed late" are derived from the
    dates when read.
    """

    __tablename__ = "followup_visits"
    __table_args__ = (
        UniqueConstraint("child_id", "timepoint_code"),
        # the visits to chase: scheduled ones whose window has opened (the work queue)
        Index("ix_followup_visits_status_window_start", "status", "window_start"),
        code_check("status", VISIT_STATUSES),
        CheckConstraint(
            "window_start <= target_date AND target_date <= window_end", name="target_in_window"
        ),
        CheckConstraint(
            "(status = 'completed') = (completed_on IS NOT NULL)", name="completed_has_date"
        ),
        CheckConstraint(
            "status NOT IN ('missed', 'not_required') OR status_reason IS NOT NULL",
            name="status_has_reason",
        ),
        void_check(),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(
        ForeignKey("children.id", ondelete="RESTRICT"), index=True
    )
    timepoint_code: Mapped[str] = mapped_column(ForeignKey("timepoints.code", ondelete="RESTRICT"))
    anchor_date: Mapped[date] = mapped_column(Date)
    target_date: Mapped[date] = mapped_column(Date)
    window_start: Mapped[date] = mapped_column(Date)
    window_end: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    status_reason: Mapped[str | None] = mapped_column(Text)
    completed_on: Mapped[date | None] = mapped_column(Date)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
