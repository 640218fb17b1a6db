"""What "a stored row agrees with the audit trail" means (``noim audit verify``).

``account`` replays one row's audit rows (in ``seq`` order: an insert sets the whole
row, an update or void one field) into the trail's *account* of the row; ``compare``
compares a stored row with it.  This is the one place that decides agreement: the
canonical JSON text of every column of the stored row (``noim.db.bulk.column_encoder``)
equals the text the trail holds for that column.  Two faster routes give the same
answer:

* a row inserted once and never changed is compared as one text: an insert audits the
  whole row's canonical text (``noim.db.bulk.RowEncoder.row``), so equal texts mean
  equal columns;
* a row held by a grouped audit row comes as a tuple of JSON values in the table's
  column order (``noim.db.audit_grouped.expand_audit_row_values``) and is compared value
  by value and type by type with the stored row's values as their texts would parse
  (``RowCodec.values``), falling back to the texts whenever they are not all equal.

Identity tables' identifying values are compared as the keyed digests the trail holds
(``audited_form``), and a column added after a row was audited holds NULL.

Messages name the table, row and field, never values: they may be identifiable or
reveal an arm.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Sequence
from datetime import UTC
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Boolean, Date, DateTime, Float, Integer, Numeric, String, Table, Text
from sqlalchemy.engine import Connection

from noim.db import bulk
from noim.db.base import UTCDateTime
from noim.db.identity_audit import all_keys, identifying, token_json

_BAD_JSON = (TypeError, ValueError, AttributeError, KeyError)

#: canonical JSON (as ``noim.db.bulk.dump`` writes it) of values read back from audit rows
dump = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode

#: a row held by a grouped audit row: a tuple in the table's column order, or a dict
Held = tuple[Any, ...] | dict[str, Any]


class Reporter(Protocol):
    def add(self, message: str, limit: int) -> None: ...


def not_canonical(seq: int) -> str:
    return f"audit row {seq} holds a value that noim did not write (not canonical JSON)"


# --------------------------------------------------------------------------- stored rows


class _NegativeZero:
    """Stands for a stored -0.0, which equals 0.0 but is audited as another text."""


_NEGATIVE_ZERO = _NegativeZero()


def _float_value(v: Any) -> Any:
    if v == 0 and isinstance(v, float) and math.copysign(1.0, v) < 0:
        return _NEGATIVE_ZERO
    return v


def _date_value(v: Any) -> Any:
    return v if v is None else v.isoformat()


def _timestamp_value(v: Any) -> Any:
    if v is None:
        return None
    stamp = v if v.tzinfo is not None else v.replace(tzinfo=UTC)
    return stamp.astimezone(UTC).isoformat(timespec="microseconds")


def _numeric_value(scale: int | None) -> Callable[[Any], Any]:
    def value(v: Any) -> Any:
        return v if v is None else str(bulk.to_decimal(v, scale))

    return value


def _remembered(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``convert`` remembering its last few thousand results (dates and timestamps repeat:
    a visit's dates, the time every score of an import was computed).  Only for types whose
    equal values have equal texts."""
    memory: dict[Any, Any] = {}

    def value(v: Any) -> Any:
        found = memory.get(v, memory)
        if found is memory:
            if len(memory) >= 4096:
                memory.clear()
            found = memory[v] = convert(v)
        return found

    return value


def _json_value(t: Any) -> Callable[[Any], Any] | bool | None:
    """How a stored value of type ``t`` becomes the value its canonical text parses to
    (as ``noim.db.bulk.column_encoder`` encodes it): None (itself), a function, or False
    (not a scalar: compare the texts)."""
    if isinstance(t, UTCDateTime | DateTime):
        return _remembered(_timestamp_value)
    if isinstance(t, Date):
        return _remembered(_date_value)
    if isinstance(t, Boolean | Integer | String | Text):
        return None
    if isinstance(t, Float):
        return _float_value
    if isinstance(t, Numeric):
        return _numeric_value(t.scale)
    return False


#: ``same(row_key, column, stored_text, audited_text)``: whether a stored column value is
#: the one the trail holds (``audited_form``)
Same = Callable[[str, str, str, str | None], bool]


def _plain(_key: str, _column: str, stored: str, audited: str | None) -> bool:
    # a column added after the row was audited holds NULL, which no audit row says
    return stored == (audited or "null")


def audited_form(conn: Connection, table: str) -> Same:
    """How ``table``'s column values appear in the trail.  Identifying values of the
    identity tables are held as keyed digests (``noim.db.identity_audit``): the stored
    value is digested with its record's key to compare (an erased record has no key and
    only NULLs; audit rows written before digests hold the values themselves)."""
    columns = identifying(table)
    if not columns:
        return _plain
    keys = all_keys(conn, table)

    def same(key: str, column: str, stored: str, audited: str | None) -> bool:
        if _plain(key, column, stored, audited):
            return True
        if column not in columns or key not in keys:
            return False
        return token_json(keys[key], table, column, stored) == audited

    return same


class RowCodec:
    """A table's stored rows (tuples in column order) as the trail holds them: the
    canonical text of the whole row, and the JSON value of each column."""

    def __init__(self, table: Table, same: Same = _plain) -> None:
        self.table = table
        self.same = same
        columns = list(table.columns)
        self.names = [c.name for c in columns]
        self.encoders = [bulk.column_encoder(c) for c in columns]
        order = sorted(range(len(columns)), key=lambda i: columns[i].name)
        self._prefixes = [f'"{columns[i].name}":' for i in order]
        self._sorted_encoders = [self.encoders[i] for i in order]
        self._pick: Callable[[Sequence[Any]], Sequence[Any]] = (
            operator.itemgetter(*order) if len(order) > 1 else (lambda r: (r[order[0]],))
        )
        #: (position, function) of the columns whose JSON value is not the stored value;
        #: None when a column's JSON value is not a scalar (compare the texts only)
        self.conversions: list[tuple[int, Callable[[Any], Any]]] | None = []
        for i, c in enumerate(columns):
            convert = _json_value(c.type)
            if convert is False:
                self.conversions = None
                break
            if callable(convert):
                self.conversions.append((i, convert))

    def text(self, row: Sequence[Any]) -> str:
        """``noim.db.bulk.RowEncoder.row`` of the row (the new_value of its insert)."""
        parts = zip(self._prefixes, self._sorted_encoders, self._pick(row), strict=True)
        return "{" + ",".join([prefix + encode(value) for prefix, encode, value in parts]) + "}"

    def values(self, row: Sequence[Any]) -> tuple[Any, ...]:
        """The row's values as their canonical texts parse (``json.loads``)."""
        if not self.conversions:
            return tuple(row)
        out = list(row)
        for i, convert in self.conversions:
            out[i] = convert(out[i])
        return tuple(out)

    def agrees(self, row: Sequence[Any], held: tuple[Any, ...]) -> bool:
        """Equal values of equal types (1 == 1.0 == True, but their texts differ)."""
        if self.conversions is None:
            return False
        values = self.values(row)
        return values == held and tuple(map(type, values)) == tuple(map(type, held))


# --------------------------------------------------------------------------- the trail's account


class Event(NamedTuple):
    """One audit row's part in a row's history."""

    seq: int
    #: position of the row inside a grouped audit row (0 for an ordinary audit row)
    part: int
    action: str
    field: str | None
    #: ``new_value`` as stored (ordinary audit rows)
    text: str | None
    #: the row as a grouped audit row holds it
    held: Held | None


class Whole(NamedTuple):
    """A row whose history is one insert: the canonical JSON text of the whole row."""

    text: str
    seq: int


#: the trail's account of a row: column -> canonical JSON text; a ``Whole``; a plain
#: tuple (one grouped insert: the values in the table's column order); or None (the
#: trail knows no such row)
Account = dict[str, str] | Whole | tuple[Any, ...] | None


def held_account(held: Held, seq: int) -> Account:
    """The account of a row whose history is one grouped insert."""
    return held if type(held) is tuple else Whole(dump(held), seq)


def account(events: Sequence[Event], names: Sequence[str], report: Reporter, limit: int) -> Account:
    """Replay one row's audit rows (in ``seq`` order): an insert sets the whole row, an
    update or void one field.  An audit row that noim could not have written is reported
    and skipped."""
    if len(events) == 1 and events[0].action == "insert":
        e = events[0]
        if e.held is not None:
            return held_account(e.held, e.seq)
        if isinstance(e.text, str):
            return Whole(e.text, e.seq)
    state: dict[str, str] | None = None
    for e in events:
        if e.held is not None:
            state = _texts(e.held, names)
            continue
        try:
            if e.action == "insert":
                state = {k: dump(v) for k, v in json.loads(e.text).items()}  # type: ignore[arg-type]
            else:
                value = dump(json.loads(e.text))  # type: ignore[arg-type]
                if state is None:
                    state = {}
                state[e.field] = value  # type: ignore[index]
        except _BAD_JSON:
            report.add(not_canonical(e.seq), limit)
    return state


def check_canonical(seq: int, action: str, text: Any, report: Reporter, limit: int) -> None:
    """Report an audit row of a table noim does not have whose value noim did not write."""
    try:
        value = json.loads(text)
        if action == "insert":
            {k: dump(v) for k, v in value.items()}
    except _BAD_JSON:
        report.add(not_canonical(seq), limit)


def _texts(held: Held, names: Sequence[str]) -> dict[str, str]:
    pairs = held.items() if isinstance(held, dict) else zip(names, held, strict=True)
    return {k: dump(v) for k, v in pairs}


def _parsed(whole: Whole, report: Reporter, limit: int) -> dict[str, str] | None:
    try:
        return {k: dump(v) for k, v in json.loads(whole.text).items()}
    except _BAD_JSON:
        report.add(not_canonical(whole.seq), limit)
        return None


def compare(
    codec: RowCodec,
    key: str,
    stored: Sequence[Any] | None,
    audited: Account,
    report: Reporter,
    limit: int,
) -> None:
    """Compare one stored row (None: not in the table) with the trail's account of it."""
    name = codec.table.name
    if type(audited) is tuple:
        if stored is not None and codec.agrees(stored, audited):
            return
        audited = _texts(audited, codec.names)
    elif isinstance(audited, Whole):
        if stored is not None and codec.text(stored) == audited.text:
            return
        audited = _parsed(audited, report, limit)
    if stored is None:
        if audited is not None:
            report.add(
                f"{name} row {key} is in the audit trail but not in the table: deleted "
                "behind noim's back",
                limit,
            )
        return
    if audited is None:
        report.add(f"{name} row {key} has no audit record: inserted behind noim's back", limit)
        return
    assert isinstance(audited, dict)
    for column, encode, value in zip(codec.names, codec.encoders, stored, strict=True):
        if not codec.same(key, column, encode(value), audited.get(column)):
            report.add(
                f"{name} row {key} field {column} differs from the audit trail: "
                "changed behind noim's back",
                limit,
            )
