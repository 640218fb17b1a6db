"""The audit trail: append-only, hash-chained rows written in the same transaction as the change."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from noim.db.base import Base, code_check
from noim.domain.codes import AUDIT_ACTIONS


class AuditLog(Base):
    """One audited change: a whole inserted row, one changed field, or a void.

    ``hash`` is SHA-256 over this row's content and the previous row's hash, so
    any row changed, inserted or removed outside noim breaks the chain.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        code_check("action", AUDIT_ACTIONS),
        CheckConstraint("seq > 0", name="seq_positive"),
        Index("ix_audit_log_table_key", "table_name", "row_key"),
        # the grouped rows of a table (a record's history looks for them); partial: only
        # the grouped rows (field GROUPED_FIELD of noim.db.audit_grouped) are indexed
        Index(
            "ix_audit_log_grouped_table",
            "table_name",
            sqlite_where=text("field = '(rows)'"),
            postgresql_where=text("field = '(rows)'"),
        ),
    )
    __audited__ = False

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    recorded_at: Mapped[datetime]
    tx_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    user_name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(8))
    table_name: Mapped[str] = mapped_column(String(64))
    row_key: Mapped[str] = mapped_column(String(64))
    field: Mapped[str | None] = mapped_column(String(64))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    noim_version: Mapped[str] = mapped_column(String(16))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The end of the chain (last sequence number and hash); locked while a transaction appends."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)
    __audited__ = False

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))


class IdentityKey(Base):
    """The key of one identity record's digests in the audit trail
    (``noim.db.identity_audit``).  Deleted, and only then, when the person's details are
    erased on request: the digests can then no longer be linked to any value."""

    __tablename__ = "identity_keys"
    __table_args__ = (CheckConstraint("length(key_hex) = 64", name="key_length"),)
    __audited__ = False

    table_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    row_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_hex: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
