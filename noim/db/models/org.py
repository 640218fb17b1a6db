"""The trial's set-up (from the trial definition), sites, and users with roles."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from noim.db.base import Base, VoidMixin, code_check, void_check
from noim.domain.codes import (
    JURISDICTIONS,
    RANDOMISATION_METHODS,
    RESPONDENT_TYPES,
    TEAM_KINDS,
    TIMEPOINT_ANCHORS,
)


class Trial(Base):
    """The one trial this database holds, with the definition it was initialised from."""

    __tablename__ = "trial"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        code_check("randomisation_method", RANDOMISATION_METHODS),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    code: Mapped[str] = mapped_column(String(16))
    short_name: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text)
    registration: Mapped[str] = mapped_column(String(64))
    target_families: Mapped[int | None] = mapped_column(Integer)
    randomisation_method: Mapped[str] = mapped_column(String(16))
    definition_toml: Mapped[str] = mapped_column(Text)
    definition_sha256: Mapped[str] = mapped_column(String(64))
    initialised_at: Mapped[datetime]


class Site(Base):
    __tablename__ = "sites"
    __table_args__ = (code_check("jurisdiction", JURISDICTIONS),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    jurisdiction: Mapped[str] = mapped_column(String(16))
    id_prefix: Mapped[str] = mapped_column(String(3), unique=True)
    target_families: Mapped[int | None] = mapped_column(Integer)
    requires_care_proceedings: Mapped[bool] = mapped_column(Boolean, default=False)


class LocalAuthority(Base):
    __tablename__ = "local_authorities"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"), index=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(128))


class Arm(Base):
    __tablename__ = "arms"
    __table_args__ = (CheckConstraint("ratio > 0", name="ratio_positive"),)
    __arm_columns__ = ("code", "name")

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    ratio: Mapped[int] = mapped_column(Integer, default=1)
    sort_order: Mapped[int] = mapped_column(Integer)


class ArmSiteLabel(Base):
    """The local name of an arm at a site (GIFT in Glasgow, LIFT in London)."""

    __tablename__ = "arm_site_labels"
    __table_args__ = (UniqueConstraint("arm_code", "site_id"),)
    __arm_columns__ = ("arm_code", "label")

    id: Mapped[int] = mapped_column(primary_key=True)
    arm_code: Mapped[str] = mapped_column(ForeignKey("arms.code", ondelete="RESTRICT"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"))
    label: Mapped[str] = mapped_column(String(128))


class Team(Base):
    __tablename__ = "teams"
    __table_args__ = (code_check("kind", TEAM_KINDS),)
    __arm_columns__ = ("arm_code",)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"), index=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    arm_code: Mapped[str | None] = mapped_column(ForeignKey("arms.code", ondelete="RESTRICT"))


class TimepointRow(Base):
    """A scheduled assessment point: anchor date, target offset and window."""

    __tablename__ = "timepoints"
    __table_args__ = (code_check("anchor", TIMEPOINT_ANCHORS),)

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    label: Mapped[str] = mapped_column(String(128))
    anchor: Mapped[str] = mapped_column(String(16))
    offset: Mapped[str] = mapped_column(String(8))
    window_start: Mapped[str] = mapped_column(String(8))
    window_end: Mapped[str] = mapped_column(String(8))
    sort_order: Mapped[int] = mapped_column(Integer)


class TimepointInstrument(Base):
    """Which instrument which respondent completes at a timepoint (and for which ages)."""

    __tablename__ = "timepoint_instruments"
    __table_args__ = (
        UniqueConstraint("timepoint_code", "instrument_code", "respondent_type"),
        code_check("respondent_type", RESPONDENT_TYPES),
        CheckConstraint(
            "min_age_months IS NULL OR max_age_months IS NULL OR max_age_months >= min_age_months",
            name="age_range",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    timepoint_code: Mapped[str] = mapped_column(ForeignKey("timepoints.code", ondelete="RESTRICT"))
    instrument_code: Mapped[str] = mapped_column(String(32))
    respondent_type: Mapped[str] = mapped_column(String(16))
    min_age_months: Mapped[int | None] = mapped_column(Integer)
    max_age_months: Mapped[int | None] = mapped_column(Integer)
    required: Mapped[bool] = mapped_column(Boolean, default=True)


class RoleRow(Base):
    """The roles noim knows (copied from ``noim.domain.roles``)."""

    __tablename__ = "roles"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    site_scoped: Mapped[bool] = mapped_column(Boolean)
    blinded: Mapped[bool] = mapped_column(Boolean)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("length(name) >= 2", name="name_length"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(128))
    role_code: Mapped[str] = mapped_column(ForeignKey("roles.code", ondelete="RESTRICT"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class UserSite(VoidMixin, Base):
    """A user's membership of a site (voided, never deleted, when it ends)."""

    __tablename__ = "user_sites"
    __table_args__ = (UniqueConstraint("user_id", "site_id"), void_check())

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"))
