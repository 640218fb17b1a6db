"""Data freezes: named, hashed snapshots that analyses and reports cite."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from noim.db.base import Base


class DataFreeze(Base):
    __tablename__ = "data_freezes"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    #: the last audit sequence number included: the freeze is the data as of that row
    audit_seq: Mapped[int] = mapped_column(Integer)
    schema_revision: Mapped[str] = mapped_column(String(32))
    content_sha256: Mapped[str] = mapped_column(String(64))
    row_counts: Mapped[dict[str, Any]] = mapped_column(JSON)
