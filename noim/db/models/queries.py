"""Data queries (data clarification): raised by a rule or a person, answered, resolved, closed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from noim.db.base import Base, code_check
from noim.domain.codes import QUERY_STATUSES


class DataQuery(Base):
    __tablename__ = "data_queries"
    __table_args__ = (
        code_check("status", QUERY_STATUSES),
        CheckConstraint("rule_id IS NOT NULL OR raised_by_id IS NOT NULL", name="has_origin"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int | None] = mapped_column(
        ForeignKey("sites.id", ondelete="RESTRICT"), index=True
    )
    table_name: Mapped[str] = mapped_column(String(64))
    row_key: Mapped[str] = mapped_column(String(64))
    field: Mapped[str | None] = mapped_column(String(64))
    rule_id: Mapped[str | None] = mapped_column(String(32), index=True)
    raised_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    raised_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="open")
    message: Mapped[str] = mapped_column(Text)
    value_seen: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)


class DataQueryMessage(Base):
    """One entry in a query's thread (a question, an answer, a status change)."""

    __tablename__ = "data_query_messages"
    __table_args__ = (code_check("status_to", QUERY_STATUSES, nullable=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    query_id: Mapped[int] = mapped_column(
        ForeignKey("data_queries.id", ondelete="RESTRICT"), index=True
    )
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    posted_at: Mapped[datetime]
    body: Mapped[str] = mapped_column(Text)
    status_to: Mapped[str | None] = mapped_column(String(16))
