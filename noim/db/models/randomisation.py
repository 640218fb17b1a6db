"""Allocations (one per family, never updated or deleted) and post-randomisation exclusions."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
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
    #: the arm, and what replaying the minimisation or the sealed list would need (the
    #: factors and stratum of each allocation in sequence order)
    __arm_columns__ = ("arm_code", "stratum", "factors", "sequence_number", "list_position")

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
    #: block method: the slot of the sealed list this allocation took (within its stratum)
    list_position: Mapped[int | None] = mapped_column(Integer)
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


class RandomisationState(Base):
    """The trial's randomisation set-up: method, seed, the generator's state after the last
    allocation (minimisation) and the hash of the sealed allocation list (blocks)."""

    __tablename__ = "randomisation_state"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        code_check("method", RANDOMISATION_METHODS),
    )
    #: all of it but the method: the seed or any generator state replays the allocations
    __arm_columns__ = ("seed", "rng_state", "list_sha256")

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    method: Mapped[str] = mapped_column(String(16))
    seed: Mapped[int] = mapped_column(BigInteger)
    rng_state: Mapped[dict[str, Any]] = mapped_column(JSON)
    list_sha256: Mapped[str | None] = mapped_column(String(64))
    configured_at: Mapped[datetime]
    configured_by_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))


class MaskingKey(Base):
    """The secret key of the families' masked codes (written once at set-up, never shown).

    Drawn from the operating system's generator, never from the randomisation seed: a
    masked code keyed by the seed would let a blinded reader test guesses of the seed
    offline and, with the seed, replay every allocation.  Not audited (the audit trail
    would show it); the database refuses updates and deletes.
    """

    __tablename__ = "masking_key"
    __audited__ = False
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        CheckConstraint("length(key_hex) = 64", name="key_length"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    key_hex: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class AllocationListEntry(Base):
    """One slot of the sealed, pre-generated block list (block method): written once, never changed."""

    __tablename__ = "allocation_list"
    __table_args__ = (
        UniqueConstraint("stratum", "position"),
        CheckConstraint("position > 0", name="position_positive"),
        CheckConstraint("block_size > 0", name="block_size_positive"),
    )
    __arm_columns__ = ("stratum", "position", "block_number", "block_size", "arm_code")

    id: Mapped[int] = mapped_column(primary_key=True)
    stratum: Mapped[str] = mapped_column(String(128))
    position: Mapped[int] = mapped_column(Integer)
    block_number: Mapped[int] = mapped_column(Integer)
    block_size: Mapped[int] = mapped_column(Integer)
    arm_code: Mapped[str] = mapped_column(ForeignKey("arms.code", ondelete="RESTRICT"))
