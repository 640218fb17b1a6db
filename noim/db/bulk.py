"""Set-based writing: reserve primary keys, insert many rows with one executemany,
and encode stored values canonically (the form the audit trail keeps).

``insert_many`` goes straight to the driver's ``executemany`` (SQLAlchemy's
per-row parameter building is the bottleneck at a million rows) while still
applying each column type's own bind processor, so values are stored exactly
as the ORM would store them.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.schema import Column

from noim.db.base import UTCDateTime

Encoder = Callable[[Any], str]
_NULL = "null"
_INF = float("inf")
_encode_string: Callable[[str], str] = json.encoder.encode_basestring


# --------------------------------------------------------------------------- canonical encoding


def canonical(value: Any) -> Any:
    """A JSON-able form of any value (dates ISO, timestamps ISO UTC, decimals as text)."""
    if value is None or isinstance(value, bool | int | str | float):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return str(value)


def dump(value: Any) -> str:
    """Canonical JSON text: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _timestamp(v: Any) -> str:
    if v is None:
        return _NULL
    stamp: datetime = v if v.tzinfo is not None else v.replace(tzinfo=UTC)
    return '"' + stamp.astimezone(UTC).isoformat(timespec="microseconds") + '"'


def _date(v: Any) -> str:
    return _NULL if v is None else '"' + v.isoformat() + '"'


def _bool(v: Any) -> str:
    return _NULL if v is None else ("true" if v else "false")


def _float(v: Any) -> str:
    """``json.dumps(float(v))`` (the shortest repr; NaN and the infinities as JSON spells them)."""
    if v is None:
        return _NULL
    f = float(v)
    if f != f:
        return "NaN"
    if f in (_INF, -_INF):
        return "Infinity" if f > 0 else "-Infinity"
    return float.__repr__(f)


def _int(v: Any) -> str:
    return _NULL if v is None else str(int(v))


def _string(v: Any) -> str:
    """``json.dumps(str(v), ensure_ascii=False)``, through the encoder's C function directly."""
    return _NULL if v is None else _encode_string(str(v))


def to_decimal(value: Any, scale: int | None) -> Decimal:
    """A fixed-point value as stored in a NUMERIC(p, scale) column (half rounded away from zero)."""
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    return d.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP) if scale is not None else d


def _numeric(scale: int | None) -> Encoder:
    def enc(v: Any) -> str:
        return _NULL if v is None else '"' + str(to_decimal(v, scale)) + '"'

    return enc


def column_encoder(column: Column[Any]) -> Encoder:
    """A function giving the canonical JSON text of a value of ``column`` as the database returns it."""
    t = column.type
    if isinstance(t, UTCDateTime | DateTime):
        return _timestamp
    if isinstance(t, Date):
        return _date
    if isinstance(t, Boolean):
        return _bool
    if isinstance(t, Float):
        return _float
    if isinstance(t, Numeric):
        return _numeric(t.scale)
    if isinstance(t, Integer):
        return _int
    if isinstance(t, String | Text):
        return _string
    if isinstance(t, JSON):
        return dump
    return dump


class RowEncoder:
    """Encodes whole rows of one table as canonical JSON objects, and single columns."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.columns = sorted(table.columns, key=lambda c: c.name)
        self.encoders: dict[str, Encoder] = {c.name: column_encoder(c) for c in table.columns}
        self._parts = [(f'"{c.name}":', c.name, self.encoders[c.name]) for c in self.columns]

    def row(self, values: Mapping[str, Any]) -> str:
        return (
            "{"
            + ",".join(prefix + enc(values.get(name)) for prefix, name, enc in self._parts)
            + "}"
        )

    def value(self, column: str, value: Any) -> str:
        return self.encoders[column](value)


_ENCODERS: dict[str, RowEncoder] = {}


def encoder_for(table: Table) -> RowEncoder:
    enc = _ENCODERS.get(table.name)
    if enc is None:
        enc = _ENCODERS[table.name] = RowEncoder(table)
    return enc


# --------------------------------------------------------------------------- writing


def integer_pk(table: Table) -> Column[Any] | None:
    """The table's single integer primary-key column, if it has one."""
    pks = list(table.primary_key.columns)
    if (
        len(pks) == 1
        and isinstance(pks[0].type, Integer)
        and pks[0].autoincrement in (True, "auto")
    ):
        return pks[0]
    return None


def reserve_ids(conn: Connection, table: Table, n: int) -> list[int]:
    """Reserve ``n`` new primary keys for ``table`` (call inside the writing transaction).

    SQLite: the next ``n`` rowids after the largest (the write lock is held, and
    noim never deletes rows).  PostgreSQL: ``n`` values from the column's sequence.
    """
    if n <= 0:
        return []
    pk = integer_pk(table)
    if pk is None:
        raise ValueError(f"{table.name} has no integer primary key to reserve")
    if conn.dialect.name == "postgresql":
        rows = conn.execute(
            text("SELECT nextval(pg_get_serial_sequence(:t, :c)) FROM generate_series(1, :n)"),
            {"t": table.name, "c": pk.name, "n": n},
        )
        return [int(r[0]) for r in rows]
    start = int(
        conn.execute(text(f"SELECT COALESCE(MAX({pk.name}), 0) FROM {table.name}")).scalar_one()
    )
    return list(range(start + 1, start + n + 1))


def complete_rows(table: Table, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows with every column present: Python-side scalar defaults applied, else None."""
    defaults: dict[str, Any] = {}
    for c in table.columns:
        if c.default is not None and getattr(c.default, "is_scalar", False):
            defaults[c.name] = c.default.arg  # type: ignore[attr-defined]
    names = [c.name for c in table.columns]
    unknown = {k for r in rows for k in r} - set(names)
    if unknown:
        raise KeyError(f"{table.name} has no column(s) {', '.join(sorted(unknown))}")
    out = [{n: r[n] if n in r else defaults.get(n) for n in names} for r in rows]
    # fixed-point values are rounded here, once, so every backend stores what the audit trail records
    for c in table.columns:
        if isinstance(c.type, Numeric) and not isinstance(c.type, Float):
            scale = c.type.scale
            for r in out:
                if r[c.name] is not None:
                    r[c.name] = to_decimal(r[c.name], scale)
    return out


def insert_many(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT ``rows`` (complete dicts) with one driver-level executemany.

    Each column type's bind processor is applied (only where the type has one),
    so values are stored exactly as SQLAlchemy would store them.
    """
    if not rows:
        return
    names = [c.name for c in table.columns]
    getter = operator.itemgetter(*names)
    processed = [
        (i, p)
        for i, c in enumerate(table.columns)
        if (p := c.type._cached_bind_processor(conn.dialect)) is not None
    ]
    if processed:
        params: list[tuple[Any, ...]] = []
        for r in rows:
            values = list(getter(r))
            for i, p in processed:
                values[i] = p(values[i])
            params.append(tuple(values))
    else:
        params = [getter(r) for r in rows]
    executemany(conn, table.name, names, params)


def executemany(
    conn: Connection, table: str, names: Sequence[str], params: list[tuple[Any, ...]]
) -> None:
    """Run INSERT for ``params`` (tuples already in the driver's form) with the driver's executemany."""
    placeholder = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join([placeholder] * len(names))})"
    )
    conn.exec_driver_sql(sql, params)


#: SQLite page cache (KiB) while one unit of work writes a million rows into several tables
LARGE_WRITE_CACHE_KIB = 65536


@contextmanager
def large_writes(conn: Connection) -> Iterator[None]:
    """A bigger SQLite page cache while many rows go into several tables and indexes at once
    (the pages stay in memory instead of being spilled to the WAL and read back); the
    connection's own size is restored after.  Durability is unchanged: the journal mode and
    ``synchronous = FULL`` of ``noim.db.session.make_engine`` are left as they are (a test
    holds this), and so are other databases."""
    if conn.dialect.name != "sqlite":
        yield
        return
    before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size = -{LARGE_WRITE_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {int(before or -2000)}")
