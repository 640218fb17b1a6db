"""Declarative base, naming convention, column types and mixins shared by every model."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import CheckConstraint, DateTime, Dialect, MetaData, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from noim.domain.codes import sql_in

#: One naming convention for every constraint and index, so migrations (and
#: SQLite batch mode) can refer to them by stable names.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    Refuses naive datetimes on the way in; always returns aware UTC datetimes.
    PostgreSQL stores ``timestamp with time zone``; SQLite stores the UTC wall
    time as text.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"timestamp {value!r} has no time zone; expected an aware UTC datetime"
            )
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the only clock noim uses)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}

    #: audited tables write audit rows for every insert, update and void
    __audited__: bool = True
    #: columns whose values reveal the allocated arm, or from which the allocation sequence
    #: could be replayed (generator state, seed, factors, sequence numbers, the sealed list):
    #: masked for blinded roles wherever a row's values are shown (the audit trail)
    __arm_columns__: tuple[str, ...] = ()
    #: table holds identifiable details (names, addresses ...)
    __identifiable__: bool = False

    def __repr__(self) -> str:
        pk = getattr(self, "id", None)
        return f"<{type(self).__name__} {pk}>"


class VoidMixin:
    """Trial data is never deleted: it is voided with a reason and stays in place."""

    voided_at: Mapped[datetime | None] = mapped_column(default=None)
    void_reason: Mapped[str | None] = mapped_column(Text, default=None)


def void_check() -> CheckConstraint:
    """Voided rows carry both a time and a reason; live rows neither."""
    return CheckConstraint(
        "(voided_at IS NULL AND void_reason IS NULL) OR "
        "(voided_at IS NOT NULL AND void_reason IS NOT NULL)",
        name="void_has_reason",
    )


def code_check(column: str, values: tuple[str, ...], nullable: bool = False) -> CheckConstraint:
    """CHECK that ``column`` holds one of ``values`` (NULL allowed when ``nullable``)."""
    sql = sql_in(column, values)
    if nullable:
        sql = f"{column} IS NULL OR {sql}"
    return CheckConstraint(sql, name=f"{column}_code")


def date_order_check(earlier: str, later: str, name: str | None = None) -> CheckConstraint:
    """CHECK that ``later`` is not before ``earlier`` when both are present."""
    return CheckConstraint(
        f"{later} IS NULL OR {earlier} IS NULL OR {later} >= {earlier}",
        name=name or f"{later}_not_before_{earlier}",
    )
