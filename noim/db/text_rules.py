"""Every text column's limit, read from the models, and the unit of work's safety net.

The rules themselves are ``noim.domain.text`` (``TXT-001`` no control characters,
``TXT-002`` no longer than the column).  This module is the one place that knows which
columns they apply to and how: a ``String(n)`` column is single-line text of at most
``n`` characters; a ``Text`` column is free text (tab, newline and carriage return allowed,
no length limit).

The services and the import kinds check their input against these limits first, naming
the record and field (or the file's row and column).  So that nothing can slip past them,
the same check runs on everything about to reach the database:

* ``install(session_class)``: before every ORM flush, each new object's text values and
  each changed text value of a modified object;
* ``require_rows`` / ``require_columns``: the bulk paths (``noim.db.audit.insert_rows``,
  ``update_rows``, ``noim.db.audit_grouped.insert_columns`` / ``insert_records``);
* ``guard_engine(engine)``: any statement parameter holding a NUL character (a query
  looking a value up, on SQLite as on PostgreSQL, whose driver cannot send one).

Each refuses with ``ValidationError`` before any SQL is sent, so both backends give the
same message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy import Engine, String, Table, Text, event, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapper, Session, UOWTransaction
from sqlalchemy.sql.schema import Column

from noim.domain import text
from noim.domain.exceptions import Problem, ValidationError
from noim.domain.text import TextLimit

__all__ = [
    "check",
    "column_limit",
    "guard_engine",
    "install",
    "limit_of",
    "require",
    "require_columns",
    "require_rows",
    "table_limits",
]


def limit_of(column: Column[Any]) -> TextLimit | None:
    """The limit of a text column (None for a column that does not hold text)."""
    t = column.type
    if isinstance(t, Text):  # before String: Text is a String without a length
        return TextLimit(None, multiline=True)
    if isinstance(t, String):
        return TextLimit(t.length, multiline=False)
    return None


@cache
def table_limits(table: Table) -> dict[str, TextLimit]:
    """Column name -> limit, for every text column of ``table``."""
    out: dict[str, TextLimit] = {}
    for c in table.columns:
        limit = limit_of(c)
        if limit is not None:
            out[c.name] = limit
    return out


def column_limit(name: str) -> TextLimit:
    """The limit of column ``"table.column"`` (``KeyError`` naming it when there is none)."""
    import noim.db.models  # noqa: F401  (every table registered)
    from noim.db.base import Base

    table_name, _, column = name.partition(".")
    table = Base.metadata.tables.get(table_name)
    limit = table_limits(table).get(column) if table is not None else None
    if limit is None:
        raise KeyError(f"{name} is not a text column of noim's schema")
    return limit


def check(record: str, field: str, value: object, column: str) -> list[Problem]:
    """The text problems of ``value`` for column ``"table.column"``: for a service to name
    its record before the flush's safety net would."""
    return text.problems(record, field, value, column_limit(column))


def require(problems: Sequence[Problem]) -> None:
    """Raise ``ValidationError`` listing ``problems`` when there are any."""
    if problems:
        raise ValidationError(problems)


def _check(
    name: str, values: Sequence[Any], record: Callable[[int], str], limit: TextLimit
) -> list[Problem]:
    """The problems of column ``name``'s ``values`` (row ``i`` named ``record(i)``)."""
    strings = [v for v in values if isinstance(v, str)]
    if not text.any_bad(strings, limit):
        return []
    out: list[Problem] = []
    for i, v in enumerate(values):
        out += text.problems(record(i), name, v, limit)
    return out


def require_rows(
    table: Table, rows: Sequence[Mapping[str, Any]], keys: Sequence[Any] | None = None
) -> None:
    """Refuse rows (dicts, as the bulk paths take them; a row may leave a column out) whose
    text breaks a column's limit.  A problem names the row by ``keys[i]`` (its primary key)
    when given, else by its position."""
    n = len(rows)

    def record(i: int) -> str:
        return (
            f"{table.name} {keys[i]}"
            if keys is not None
            else f"new {table.name} row {i + 1} of {n}"
        )

    problems: list[Problem] = []
    for name, limit in table_limits(table).items():
        values = [r.get(name) for r in rows]
        problems += _check(name, values, record, limit)
    require(problems)


def require_columns(table: Table, columns: Mapping[str, Any]) -> None:
    """Refuse column-wise rows (lists or numpy arrays) whose text breaks a column's limit."""
    pk = [c.name for c in table.primary_key.columns]
    keys = columns.get(pk[0]) if len(pk) == 1 else None

    def record(i: int) -> str:
        return f"{table.name} {keys[i]}" if keys is not None else f"new {table.name} row {i + 1}"

    problems: list[Problem] = []
    for name, limit in table_limits(table).items():
        if name in columns:
            problems += _check(name, list(columns[name]), record, limit)
    require(problems)


# --------------------------------------------------------------------------- ORM flushes


@cache
def _text_attributes(mapper: Mapper[Any]) -> tuple[tuple[str, str, TextLimit], ...]:
    """(attribute key, column name, limit) of the mapper's text columns."""
    out = []
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        if isinstance(column, Column):
            limit = limit_of(column)
            if limit is not None:
                out.append((prop.key, column.name, limit))
    return tuple(out)


def pending_problems(session: Session) -> list[Problem]:
    """The problems of the text about to be flushed: every text value of a new object, and
    the changed ones of a modified object (values stored before are not judged again)."""
    problems: list[Problem] = []
    for obj in session.new:
        state = inspect(obj)
        table = state.mapper.local_table
        for key, name, limit in _text_attributes(state.mapper):
            value = state.dict.get(key)
            problems += text.problems(f"new {table.name} record", name, value, limit)
    for obj in session.dirty:
        state = inspect(obj)
        table = state.mapper.local_table
        identity = state.identity
        record = f"{table.name} {'/'.join(map(str, identity))}" if identity else str(table.name)
        for key, name, limit in _text_attributes(state.mapper):
            for value in state.attrs[key].history.added:
                problems += text.problems(record, name, value, limit)
    return problems


def _before_flush(session: Session, _ctx: UOWTransaction, _instances: object) -> None:
    require(pending_problems(session))


def install(session_class: type[Session]) -> None:
    """Check the text of every flush of ``session_class`` (register before the audit writer)."""
    event.listen(session_class, "before_flush", _before_flush)


# --------------------------------------------------------------------------- statements


def _nul_values(parameters: Any) -> Iterable[str]:
    values = parameters.values() if isinstance(parameters, Mapping) else parameters
    if not isinstance(values, Iterable):
        return []
    return [v for v in values if isinstance(v, str) and "\x00" in v]


def _guard(
    _conn: Connection,
    _cursor: Any,
    _statement: str,
    parameters: Any,
    _context: Any,
    executemany: bool,
) -> None:
    if executemany or not parameters:  # bulk writes are checked by their paths, column-wise
        return
    bad = list(_nul_values(parameters))
    if bad:
        value = bad[0]
        raise ValidationError(
            Problem(
                "the value looked up",
                "",
                value,
                text.CONTROL_RULE,
                text.SINGLE_LINE.control_expected(value.index("\x00"), "\x00"),
            )
        )


def guard_engine(engine: Engine) -> None:
    """Refuse statements with a NUL character in a parameter on every backend alike
    (PostgreSQL's driver cannot send one; SQLite would store or compare it)."""
    event.listen(engine, "before_cursor_execute", _guard)
