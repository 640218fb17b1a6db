"""Column-wise bulk inserts and their grouped audit rows.

``insert_columns`` inserts many rows given column-wise with one executemany (``COPY`` on
PostgreSQL) and audits them: one audit row per row, or, with ``group_by``, one audit row
per group of rows that only exist as part of a parent record (an assessment's item
responses).  ``insert_records`` inserts parent records together with such parts and
writes ONE audit row per parent holding the parent row and all of its parts.

The grouped JSON text is built column-wise: each column is factorized once, the rows'
texts are encoded once per distinct combination of values, and each group's text is one
C-level join over a slice.  ``expand_audit_row`` reads either form back into rows (used by
``noim audit verify`` and ``noim audit show``).  The formats are described in docs/audit.md.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import Float, Integer, Table
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from noim.db import bulk, text_rules
from noim.db.audit import AuditEntry, _require_actor, append, is_audited, model_for, pk_columns
from noim.db.audit import row_key as make_row_key
from noim.db.base import Base

#: a column's values: a list, or a numpy array (a float array's NaN is NULL)
Values = Sequence[Any] | np.ndarray

#: ``field`` of a grouped insert's audit row (no table has a column of that name)
GROUPED_FIELD = "(rows)"
#: most distinct combinations of column values coded in one int64 (else rows are joined one by one)
_MAX_COMBOS = 2.0**62


def grouped_key(group_by: str, value: Any) -> str:
    """The ``row_key`` of the audit row of one group, e.g. ``assessment_id=17``."""
    return f"{group_by}={value}"


def _table(model: type[Base]) -> Table:
    return model.__table__  # type: ignore[return-value]


def _write(conn: Connection, table: Table, columns: Mapping[str, Values]) -> int:
    """Insert the rows (every column given, all of one length); return how many."""
    names = [c.name for c in table.columns]
    if sorted(columns) != sorted(names):
        raise KeyError(f"{table.name}: columns {sorted(columns)}; expected every one of {names}")
    n = len(columns[names[0]])
    if any(len(v) != n for v in columns.values()):
        raise ValueError(f"{table.name}: columns of different lengths")
    if n == 0:
        return 0
    stored = [_stored(table.c[name], conn, columns[name]) for name in names]
    if conn.dialect.name == "postgresql":
        _copy(conn, table.name, names, zip(*stored, strict=True))
    else:
        # the driver's executemany reads the rows as they are zipped (no list of a million tuples)
        sql = (
            f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        )
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(sql, zip(*stored, strict=True))
        finally:
            cursor.close()
    return n


def insert_columns(
    session: Session,
    model: type[Base],
    columns: Mapping[str, Values],
    group_by: str | None = None,
) -> None:
    """Insert many rows given column-wise with one executemany, and audit them.

    ``columns`` maps EVERY column of the table (the primary key included: reserve it
    with ``noim.db.bulk.reserve_ids``) to its values as stored, all of one length (a list,
    or a numpy array, where a float array's NaN stands for NULL).
    Encoding is column-wise, once per distinct value, so a million rows cost a few
    seconds, not tens.

    Without ``group_by`` each row gets the audit row ``insert_rows`` writes (whole row
    as canonical JSON).  With ``group_by`` (for child rows that only exist as part of a
    parent record, such as an assessment's item responses and derived scores) the rows
    of one group, which must be contiguous, get ONE audit row: ``action = 'insert'``,
    ``field = GROUPED_FIELD``, ``row_key = '<group_by>=<value>'`` and ``new_value`` the
    canonical JSON ``{"columns": [...], "group": {group_by: value, ...}, "rows": [[...], ...]}``
    (``columns`` sorted; ``group`` holds the group's key and any column that has one value
    in every row, such as a scoring version; ``"numbered": {"id": first}`` replaces an
    integer primary key that numbers the rows consecutively); ``noim audit verify``
    expands it back into the rows and compares each with the table.
    """
    table = _table(model)
    actor = _require_actor(session)
    text_rules.require_columns(table, columns)  # before any SQL
    conn = session.connection()
    if not _write(conn, table, columns) or not is_audited(table):
        return
    reason = session.info.get("reason")
    if group_by is None:
        (pk,) = [c.name for c in pk_columns(table)]
        entries = [
            AuditEntry("insert", table.name, str(key), None, None, body, reason)
            for key, body in zip(columns[pk], _row_bodies(table, columns), strict=True)
        ]
    else:
        groups, blocks = _blocks(table, columns, group_by)
        entries = [
            AuditEntry(
                "insert", table.name, grouped_key(group_by, g), GROUPED_FIELD, None, b, reason
            )
            for g, b in zip(groups, blocks, strict=True)
        ]
    append(conn, actor, session.info["tx_id"], entries)


def insert_records(
    session: Session,
    model: type[Base],
    columns: Mapping[str, Values],
    parts: Mapping[type[Base], Mapping[str, Values]],
    link: str,
) -> None:
    """Insert parent records and the rows that are parts of them, with ONE audit row per record.

    ``columns`` are the parent rows (every column, as for ``insert_columns``); ``parts``
    maps each part table's model to its rows, whose ``link`` column holds the parent's
    primary key (the rows of one parent contiguous).  Each parent gets one audit row:
    ``action = 'insert'``, ``table_name`` the parent's table, ``row_key`` its key,
    ``field = GROUPED_FIELD`` and ``new_value`` the canonical JSON
    ``{"row": {...the parent row...}, "tables": {"<part table>": <group>, ...}}`` where each
    ``<group>`` is the ``new_value`` ``insert_columns(..., group_by=link)`` would write for
    that parent's rows of the part table (a table without rows for the parent is left out).
    """
    table = _table(model)
    if not is_audited(table) or not all(is_audited(_table(m)) for m in parts):
        raise ValueError("insert_records writes audited tables only")
    actor = _require_actor(session)
    (pk,) = [c.name for c in pk_columns(table)]
    keys = list(columns[pk])
    known = set(keys)
    blocks: list[tuple[str, dict[Any, str]]] = []
    for part, rows in sorted(parts.items(), key=lambda kv: _table(kv[0]).name):
        if not len(rows.get(link, ())):
            continue
        groups, texts = _blocks(_table(part), rows, link)
        if not known.issuperset(groups):
            raise ValueError(f"{_table(part).name}: rows whose {link} is not a record inserted")
        blocks.append(('"' + _table(part).name + '":', dict(zip(groups, texts, strict=True))))
    text_rules.require_columns(table, columns)  # every table's text, before any SQL
    for part, rows in parts.items():
        text_rules.require_columns(_table(part), rows)
    conn = session.connection()
    _write(conn, table, columns)
    for part, rows in parts.items():
        _write(conn, _table(part), rows)
    if not keys:
        return
    reason = session.info.get("reason")
    name = str(table.name)
    # each part's group text aligned with the records (empty where a record has none)
    held = [
        [prefix + text if text else "" for text in map(group.get, keys, [""] * len(keys))]
        for prefix, group in blocks
    ]
    if len(held) > 1:
        tables = [",".join(t for t in texts if t) for texts in zip(*held, strict=True)]
    else:
        tables = held[0] if held else [""] * len(keys)
    entries = [
        AuditEntry(
            "insert",
            name,
            str(key),
            GROUPED_FIELD,
            None,
            '{"row":' + body + ',"tables":{' + parts + "}}",
            reason,
        )
        for key, body, parts in zip(keys, _row_bodies(table, columns), tables, strict=True)
    ]
    append(conn, actor, session.info["tx_id"], entries)


def _copy(conn: Connection, table: str, names: Sequence[str], rows: Iterable[Any]) -> None:
    """PostgreSQL: ``COPY ... FROM STDIN`` in the connection's transaction (many times
    faster than INSERT for a million rows)."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor, cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _as_list(values: Values) -> Sequence[Any]:
    """Python values for the driver: a numpy array as a list (a float array's NaN as None)."""
    if not isinstance(values, np.ndarray):
        return values
    if values.dtype.kind == "f":
        out = values.astype(object)
        out[np.isnan(values)] = None
        return out.tolist()  # type: ignore[no-any-return]
    return values.tolist()  # type: ignore[no-any-return]


def _stored(column: Any, conn: Connection, values: Values) -> Sequence[Any]:
    """The driver's values of a column: a float array of a float column as Python floats
    and None (what the column's bind processor would give), else through the processor."""
    if (
        isinstance(values, np.ndarray)
        and values.dtype.kind == "f"
        and isinstance(column.type, Float)
        and not column.type.asdecimal
    ):
        return _as_list(values)
    return _processed(column, conn, _as_list(values))


def _processed(column: Any, conn: Connection, values: Sequence[Any]) -> Sequence[Any]:
    """``values`` through the column type's bind processor (once per distinct value)."""
    process = column.type._cached_bind_processor(conn.dialect)
    if process is None:
        return values
    cache = {v: process(v) for v in dict.fromkeys(values)}
    return list(map(cache.__getitem__, values))


def _encoded(table: Table, name: str, values: Values) -> list[str]:
    """Canonical JSON text of each value of column ``name`` (encoded once per distinct value)."""
    column = table.c[name]
    if column.primary_key and isinstance(column.type, Integer):
        return list(map(str, values))  # distinct and never NULL
    enc = bulk.column_encoder(column)
    cache = {v: enc(v) for v in dict.fromkeys(values)}
    return list(map(cache.__getitem__, values))


def _row_bodies(table: Table, columns: Mapping[str, Values]) -> list[str]:
    """Each row as the canonical JSON object ``insert_rows`` audits."""
    names = sorted(columns)
    encoded = [
        [f'"{name}":' + text for text in _encoded(table, name, columns[name])] for name in names
    ]
    return ["{" + body + "}" for body in map(",".join, zip(*encoded, strict=True))]


def _factorized(table: Table, name: str, values: Values) -> tuple[np.ndarray, list[str]]:
    """Codes of ``values`` and the canonical JSON text of each distinct value."""
    enc = bulk.column_encoder(table.c[name])
    n = len(values)
    if not n:
        return np.zeros(0, dtype=np.int64), []
    first = values[0]
    if isinstance(values, list) and values.count(first) == n:  # one value (C-level scan)
        return np.zeros(n, dtype=np.int64), [enc(first)]
    array: np.ndarray | None = None
    if isinstance(values, np.ndarray) and values.dtype.kind in "iuf":
        array = values  # a float array's NaN is NULL, as stored
    elif isinstance(table.c[name].type, Float):
        try:  # a float column: None becomes NaN, and NaN is stored as NULL
            array = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            array = None
    elif type(first) is int and type(values[-1]) is int:
        numeric = np.asarray(values)  # hashing machine integers is many times faster
        array = numeric if numeric.dtype.kind in "iu" else None
    if array is None:
        array = np.asarray(values, dtype=object)
    import pandas as pd  # only for bulk writes: never at CLI start-up

    codes, uniques = pd.factorize(array, use_na_sentinel=False)
    # pandas gives a missing value as NaN: noim stores it as NULL
    texts = [enc(None if isinstance(u, float) and u != u else u) for u in uniques.tolist()]
    return np.asarray(codes, dtype=np.int64), texts


def _row_texts(factors: list[tuple[np.ndarray, list[str]]], n: int) -> list[str]:
    """The comma-joined texts of each row, built once per distinct combination of values."""
    if not factors:
        return [""] * n
    sizes = [len(texts) for _codes, texts in factors]
    if float(np.prod(np.array(sizes, dtype=float))) >= _MAX_COMBOS:
        arrays = [np.asarray(texts, dtype=object)[codes] for codes, texts in factors]
        return list(map(",".join, zip(*(a.tolist() for a in arrays), strict=True)))
    combo = np.zeros(n, dtype=np.int64)
    for (codes, _texts), size in zip(factors, sizes, strict=True):
        combo = combo * size + codes
    import pandas as pd

    inverse, distinct = pd.factorize(combo)  # hashed: no sort of a million codes
    digits = []
    rest = distinct.copy()
    for size in reversed(sizes):
        digits.append(rest % size)
        rest //= size
    digits.reverse()
    columns = [
        np.asarray(texts, dtype=object)[d].tolist()
        for (_codes, texts), d in zip(factors, digits, strict=True)
    ]
    joined = np.asarray(list(map(",".join, zip(*columns, strict=True))), dtype=object)
    return joined[inverse].tolist()  # type: ignore[no-any-return]


def _blocks(
    table: Table, columns: Mapping[str, Values], group_by: str
) -> tuple[list[Any], list[str]]:
    """The groups' values and, for each, the grouped JSON text of its rows."""
    n = len(columns[group_by])
    pk_names = {c.name for c in pk_columns(table)}
    factors = {
        name: _factorized(table, name, values)
        for name, values in columns.items()
        if name not in pk_names
    }
    # columns with one value in every row go once into "group", with the group's key
    constant = {
        name: texts[0]
        for name, (_codes, texts) in factors.items()
        if name != group_by and len(texts) == 1
    }
    names = sorted(c for c in columns if c != group_by and c not in constant)
    # an integer primary key numbering the rows consecutively is given by its first value
    numbered = [
        c.name
        for c in pk_columns(table)
        if isinstance(c.type, Integer)
        and len(names) > 1
        and bool(np.all(np.diff(np.asarray(columns[c.name], dtype=np.int64)) == 1))
    ]
    names = [name for name in names if name not in numbered]
    for name in names:
        if name not in factors:  # a primary key written out in each row
            factors[name] = _factorized(table, name, columns[name])
    rows = _row_texts([factors[name] for name in names], n)
    codes, group_texts = factors[group_by]
    bounds = [0, *(np.flatnonzero(codes[1:] != codes[:-1]) + 1).tolist(), n]
    if len(group_texts) != len(bounds) - 1:
        raise ValueError(f"{table.name}: the rows of each {group_by} must be contiguous")
    before = "".join(f'"{k}":{v},' for k, v in sorted(constant.items()) if k < group_by)
    after = "".join(f',"{k}":{v}' for k, v in sorted(constant.items()) if k > group_by)
    head = '{"columns":' + bulk.dump(names) + ',"group":{' + before + '"' + group_by + '":'
    first = columns[numbered[0]] if numbered else None
    number = '},"numbered":{"' + numbered[0] + '":' if numbered else ""
    groups = columns[group_by]
    starts = bounds[:-1]
    texts = [
        head
        + group_texts[codes[start]]
        + after
        + (number + str(first[start]) if first is not None else "")
        + '},"rows":[['
        + "],[".join(rows[start:end])
        + "]]}"
        for start, end in itertools.pairwise(bounds)
    ]
    if isinstance(groups, np.ndarray):
        return groups[starts].tolist(), texts
    return [groups[start] for start in starts], texts


def expand_grouped(table: Table, new_value: str) -> list[tuple[str, dict[str, Any]]]:
    """The rows of a grouped insert's ``new_value``: (row key, column -> value) for each.

    Every row has the ``columns`` of its list and the values of ``group`` (the group's
    key, and any column with one value in every row of the insert); ``numbered`` gives
    the first value of an integer key that numbers the rows consecutively.
    """
    return _expand_block(table, json.loads(new_value))


def _expand_block(table: Table, data: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    group = data["group"]
    columns = data["columns"]
    numbered = data.get("numbered", {})
    keys = [c.name for c in pk_columns(table)]
    out = []
    for i, values in enumerate(data["rows"]):
        row = dict(zip(columns, values, strict=True))
        row.update(group)
        row.update({name: first + i for name, first in numbered.items()})
        out.append((make_row_key([row[k] for k in keys]), row))
    return out


def _plan(table: Table, data: Mapping[str, Any]) -> dict[str, tuple[int, Any]] | None:
    """Where each of the table's columns comes from in a group written in the plain form
    noim writes — (0, position in ``columns``), (1, the ``group`` value) or (2, the
    ``numbered`` first key) — or None for any other form (read by ``_expand_block``)."""
    group, columns = data["group"], data["columns"]
    numbered = data.get("numbered", {})
    rows = data["rows"]
    if (
        type(columns) is not list
        or type(group) is not dict
        or type(numbered) is not dict
        or type(rows) is not list
        or not all(type(c) is str for c in columns)
        or not all(type(f) is int for f in numbered.values())
        or not all(type(r) is list and len(r) == len(columns) for r in rows)
    ):
        return None
    # the later winning, as dict.update does in _expand_block
    source: dict[str, tuple[int, Any]] = {name: (0, i) for i, name in enumerate(columns)}
    source.update({name: (1, value) for name, value in group.items()})
    source.update({name: (2, first) for name, first in numbered.items()})
    if set(source) != {c.name for c in table.columns} or len(pk_columns(table)) != 1:
        return None
    return source


def _column(source: tuple[int, Any], rows: list[Any], by_column: list[Any]) -> Iterable[Any]:
    kind, v = source
    if kind == 0:
        return by_column[v] if rows else ()
    if kind == 1:
        return itertools.repeat(v, len(rows))
    return range(v, v + len(rows))


def _block_values(
    table: Table, data: Mapping[str, Any]
) -> list[tuple[str, dict[str, Any] | tuple[Any, ...]]]:
    """``_expand_block``, with each row as a tuple in the table's column order (no dict per
    row) when the group is in the plain form noim writes; otherwise as ``_expand_block``
    gives it (or raises)."""
    source = _plan(table, data)
    if source is None:
        return list(_expand_block(table, data))
    rows = data["rows"]
    by_column = list(zip(*rows, strict=True))  # column-wise: rows built by zip, no Python step
    values = [_column(source[c.name], rows, by_column) for c in table.columns]
    (pk,) = pk_columns(table)
    keys = map(str, _column(source[pk.name], rows, by_column))
    return list(zip(keys, zip(*values, strict=True), strict=True))


def _block_keys(table: Table, data: Mapping[str, Any]) -> range | list[str]:
    """The row keys of a group: a ``range`` when the group numbers its rows (keys
    ``str(i)``), else a list.  Raises where ``_expand_block`` raises."""
    source = _plan(table, data)
    if source is None:
        return [key for key, _row in _expand_block(table, data)]
    (pk,) = pk_columns(table)
    kind, v = source[pk.name]
    if kind == 2:
        return range(v, v + len(data["rows"]))
    return list(map(str, _column((kind, v), data["rows"], list(zip(*data["rows"], strict=True)))))


def held_keys(table_name: str, row_key: str, new_value: str) -> list[tuple[str, range | list[str]]]:
    """(table, row keys) of the rows a grouped audit row holds, without building the rows
    (a ``range`` of integers stands for their texts); raises where ``expand_audit_row``
    raises.  ``noim audit verify`` indexes the grouped rows with it."""
    held = _expand(table_name, row_key, new_value, None, _block_keys_as_rows)
    return [(name, [keys] if isinstance(keys, str) else keys) for name, keys, _row in held]


def _block_keys_as_rows(table: Table, data: Mapping[str, Any]) -> list[tuple[Any, None]]:
    return [(_block_keys(table, data), None)]


def expand_audit_row(
    table_name: str, row_key: str, new_value: str, only: str | None = None
) -> list[tuple[str, str, dict[str, Any]]]:
    """The rows a grouped audit row holds, as (table, row key, column -> value).

    Either form: a group of one table's rows (``insert_columns(..., group_by=...)``), or
    a record with its parts (``insert_records``: the record first, then the rows of each
    part table).  ``only`` names the one table whose rows are wanted (the others are not
    expanded; the text is not checked beyond what those rows need).
    """
    return _expand(table_name, row_key, new_value, only, _expand_block)


def expand_audit_row_values(
    table_name: str, row_key: str, new_value: str, only: str | None = None
) -> list[tuple[str, str, dict[str, Any] | tuple[Any, ...]]]:
    """``expand_audit_row``, faster: a row of a group holding exactly its table's columns
    comes as a tuple of its values in the table's column order (``noim audit verify``).
    Raises where ``expand_audit_row`` raises."""
    return _expand(table_name, row_key, new_value, only, _block_values)


def _expand(
    table_name: str,
    row_key: str,
    new_value: str,
    only: str | None,
    expand_block: Callable[[Table, Mapping[str, Any]], Sequence[tuple[str, Any]]],
) -> list[tuple[str, str, Any]]:
    data = json.loads(new_value)
    if "tables" not in data:
        if only is not None and only != table_name:
            return []
        table = _table(model_for(table_name))
        return [(table_name, key, row) for key, row in expand_block(table, data)]
    out: list[tuple[str, str, Any]] = []
    if only is None or only == table_name:
        out.append((table_name, row_key, dict(data["row"])))
    for name, block in sorted(data["tables"].items()):
        if only is not None and name != only:
            continue
        part = _table(model_for(name))
        out += [(name, key, row) for key, row in expand_block(part, block)]
    return out
