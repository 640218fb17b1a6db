"""Families (the randomised cluster), children (participants), birth parents and carers.

Identifiable details live in the ``*_identities`` tables, apart from research
data, and are readable only by the family's site coordinators and administrators.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from noim.db.base import Base, VoidMixin, code_check, date_order_check, void_check
from noim.domain.codes import (
    CARER_RELATIONSHIPS,
    CARER_TYPES,
    ELIGIBILITY_STATUSES,
    PARENT_ROLES,
    SEXES,
)


class Family(VoidMixin, Base):
    """A family: the unit of randomisation.  Its children share one allocation."""

    __tablename__ = "families"
    __table_args__ = (
        UniqueConstraint("site_id", "site_seq"),
        CheckConstraint("site_seq > 0", name="site_seq_positive"),
        void_check(),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    trial_id: Mapped[str] = mapped_column(String(16), unique=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"), index=True)
    site_seq: Mapped[int] = mapped_column(Integer)
    local_authority_id: Mapped[int | None] = mapped_column(
        ForeignKey("local_authorities.id", ondelete="RESTRICT")
    )
    in_care_proceedings: Mapped[bool | None] = mapped_column(Boolean)
    registered_at: Mapped[datetime]
    registered_by_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))


class Child(VoidMixin, Base):
    """A child taking part: the participant.  Trial ID = family ID + child number + check."""

    __tablename__ = "children"
    __table_args__ = (
        UniqueConstraint("family_id", "child_number"),
        code_check("sex", SEXES),
        code_check("eligibility_status", ELIGIBILITY_STATUSES),
        CheckConstraint("child_number BETWEEN 1 AND 99", name="child_number_range"),
        date_order_check("date_of_birth", "entered_care_on", "entered_care_after_birth"),
        CheckConstraint(
            "eligibility_status <> 'ineligible' OR ineligibility_reason IS NOT NULL",
            name="ineligible_has_reason",
        ),
        CheckConstraint(
            "eligibility_status = 'pending' OR eligibility_decided_on IS NOT NULL",
            name="eligibility_dated",
        ),
        void_check(),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    trial_id: Mapped[str] = mapped_column(String(20), unique=True)
    family_id: Mapped[int] = mapped_column(
        ForeignKey("families.id", ondelete="RESTRICT"), index=True
    )
    child_number: Mapped[int] = mapped_column(Integer)
    date_of_birth: Mapped[date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(8))
    entered_care_on: Mapped[date] = mapped_column(Date)
    legal_route_code: Mapped[str | None] = mapped_column(
        ForeignKey("decision_types.code", ondelete="RESTRICT")
    )
    eligibility_status: Mapped[str] = mapped_column(String(16), default="pending")
    eligibility_decided_on: Mapped[date | None] = mapped_column(Date)
    ineligibility_reason: Mapped[str | None] = mapped_column(Text)
    joined_after_randomisation: Mapped[bool] = mapped_column(Boolean, default=False)


class BirthParent(VoidMixin, Base):
    __tablename__ = "birth_parents"
    __table_args__ = (code_check("parent_role", PARENT_ROLES), void_check())

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(
        ForeignKey("families.id", ondelete="RESTRICT"), index=True
    )
    parent_role: Mapped[str] = mapped_column(String(8))
    year_of_birth: Mapped[int | None] = mapped_column(Integer)
    #: has this parent (recorded for birth mothers) had an earlier child removed from their care?
    previous_child_removed: Mapped[bool | None] = mapped_column(Boolean)


class Carer(VoidMixin, Base):
    """A foster, kinship, adoptive or residential carer (may care for children of several families)."""

    __tablename__ = "carers"
    __table_args__ = (code_check("carer_type", CARER_TYPES), void_check())

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"), index=True)
    carer_type: Mapped[str] = mapped_column(String(16))
    reference: Mapped[str | None] = mapped_column(String(32))


class ChildBirthParent(VoidMixin, Base):
    """A birth parent's relationship to a child over time (e.g. parental responsibility)."""

    __tablename__ = "child_birth_parents"
    __table_args__ = (
        date_order_check("start_date", "end_date"),
        void_check(),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(
        ForeignKey("children.id", ondelete="RESTRICT"), index=True
    )
    birth_parent_id: Mapped[int] = mapped_column(
        ForeignKey("birth_parents.id", ondelete="RESTRICT"), index=True
    )
    has_parental_responsibility: Mapped[bool | None] = mapped_column(Boolean)
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)


class ChildCarer(VoidMixin, Base):
    """A carer's relationship to a child over time: who cared for the child when."""

    __tablename__ = "child_carers"
    __table_args__ = (
        code_check("relationship", CARER_RELATIONSHIPS),
        date_order_check("start_date", "end_date"),
        void_check(),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(
        ForeignKey("children.id", ondelete="RESTRICT"), index=True
    )
    carer_id: Mapped[int] = mapped_column(ForeignKey("carers.id", ondelete="RESTRICT"), index=True)
    relationship: Mapped[str] = mapped_column(String(24))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)


class ChildIdentity(Base):
    """Identifiable details of a child: only the family's site coordinators and administrators read them."""

    __tablename__ = "child_identities"
    __identifiable__ = True

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(
        ForeignKey("children.id", ondelete="RESTRICT"), unique=True
    )
    given_name: Mapped[str | None] = mapped_column(String(128))
    family_name: Mapped[str | None] = mapped_column(String(128))
    social_work_ref: Mapped[str | None] = mapped_column(String(64))
    health_number: Mapped[str | None] = mapped_column(String(32))


class ContactDetails:
    """Name, address and telephone of an adult (a birth parent or a carer)."""

    given_name: Mapped[str | None] = mapped_column(String(128))
    family_name: Mapped[str | None] = mapped_column(String(128))
    address: Mapped[str | None] = mapped_column(Text)
    postcode: Mapped[str | None] = mapped_column(String(10))
    phone: Mapped[str | None] = mapped_column(String(32))


class BirthParentIdentity(ContactDetails, Base):
    """Identifiable details of a birth parent."""

    __tablename__ = "birth_parent_identities"
    __identifiable__ = True

    id: Mapped[int] = mapped_column(primary_key=True)
    birth_parent_id: Mapped[int] = mapped_column(
        ForeignKey("birth_parents.id", ondelete="RESTRICT"), unique=True
    )


class CarerIdentity(ContactDetails, Base):
    """Identifiable details of a carer."""

    __tablename__ = "carer_identities"
    __identifiable__ = True

    id: Mapped[int] = mapped_column(primary_key=True)
    carer_id: Mapped[int] = mapped_column(ForeignKey("carers.id", ondelete="RESTRICT"), unique=True)
