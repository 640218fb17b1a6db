"""Data freezes: named, hashed snapshots that analyses and reports cite."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from noim.db.base import Base


class DataFreeze(Base):
    __tablename__ = "data_freezes"
    #: the salt: with it, a blinded reader could test guesses of the arms against the hashes
    __arm_columns__ = ("salt",)

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    #: the last audit sequence number included: the freeze is the data as of that row
    audit_seq: Mapped[int] = mapped_column(Integer)
    schema_revision: Mapped[str] = mapped_column(String(32))
    content_sha256: Mapped[str] = mapped_column(String(64))
    row_counts: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: secret random salt (64 hex digits) of the datasets' hashes: without it a blinded
    #: reader who knows every other column of a dataset could hash each possible arm coding
    #: of a small trial and compare (NULL: a freeze made before revision 0007, unsalted)
    salt: Mapped[str | None] = mapped_column(String(64), default=None)


class DataFreezeDataset(Base):
    """One analysis dataset of a freeze, serialised canonically (written once).

    Not audited row by row: the freeze row (audited) carries ``content_sha256``, the hash
    over every dataset's ``sha256``, so a changed dataset cannot go unnoticed.
    """

    __tablename__ = "data_freeze_datasets"
    __audited__ = False
    __table_args__ = (UniqueConstraint("freeze_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    freeze_id: Mapped[int] = mapped_column(ForeignKey("data_freezes.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(64))
    #: how ``content`` is encoded (``json-columns+zlib``: see docs/data-freezes.md)
    format: Mapped[str] = mapped_column(String(32))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    #: SHA-256 of the freeze's salt followed by the uncompressed canonical text
    sha256: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer)
