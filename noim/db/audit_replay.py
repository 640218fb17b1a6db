"""The audit trail's account of each table's rows, streamed in row-key order.

``noim audit verify`` compares every audited table with what the audit trail says it
holds.  Holding the whole replayed trial in memory costs gigabytes at 10,000 families,
so the comparison is a merge join of two sorted streams per table instead:

* the table's rows, read in primary-key order (``table_rows``);
* the audit trail's account of each row, in the same order (``accounts``): the table's
  own audit rows, sorted by the database (``ORDER BY length(row_key), row_key, seq``),
  merged with the rows held by grouped audit rows (one audit row for many rows, see
  ``noim.db.audit_grouped``).

Both streams follow the *merge order* of row keys: shorter keys first, then the text
(``merge_key``).  For the non-negative integer keys noim writes that is numeric order,
so a table is read through its primary-key index; rows with a negative key (never
written by noim) are read apart and compared at the end.  Text keys are ordered the
same way by the database, byte-wise (``COLLATE "C"`` on PostgreSQL).

Grouped audit rows cannot be sorted by the database (the keys are inside them).  One
pass over them first (``GroupedIndex``) notes, per table, the smallest key each holds;
the merge then opens them a few hundred at a time in that order (``Opener``) and keeps
the rows opened and not yet passed on a heap.  Tables whose rows share grouped audit
rows (an assessment, its item responses and its scores) are merged side by side, so
each grouped row is parsed twice in all (index and opening), not once per table.

Memory holds one batch of each stream, the grouped rows opened and not yet passed, and
the small index; not the trial.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import operator
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Integer, Table, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from noim.db.audit import pk_columns, row_key
from noim.db.audit_compare import (
    Account,
    Event,
    Held,
    Reporter,
    account,
    check_canonical,
    held_account,
    not_canonical,
)
from noim.db.audit_grouped import GROUPED_FIELD, expand_audit_row_values, held_keys
from noim.db.models.audit import AuditLog

#: rows fetched per round trip from a streamed query
BATCH = 5000
#: grouped audit rows read (and expanded) per query
OPEN_BATCH = 200
_BAD_JSON = (TypeError, ValueError, AttributeError, KeyError)
_LOG: Table = AuditLog.__table__  # type: ignore[assignment]

MergeKey = tuple[int, str]


class _Pause:
    """What ``accounts`` yields when it has opened grouped rows (the tables merged side
    by side take turns there)."""


PAUSE = _Pause()


def merge_key(key: str) -> MergeKey:
    """The order both streams follow: shorter keys first, then by text (code points)."""
    return (len(key), key)


# --------------------------------------------------------------------------- reading sorted


def _text_order(conn: Connection, column: Any) -> list[ColumnElement[Any]]:
    """ORDER BY terms giving the merge order of a text column."""
    text = column.collate("C") if conn.dialect.name == "postgresql" else column
    return [func.length(column), text]


def _stream(conn: Connection, stmt: Any) -> Iterator[Any]:
    """The statement's rows, fetched ``BATCH`` at a time (a server-side cursor on
    PostgreSQL)."""
    result = conn.execution_options(yield_per=BATCH).execute(stmt)
    for partition in result.partitions():
        yield from partition


def _str(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


class StoredRows:
    """A table's rows in merge order, read ``BATCH`` at a time: ``head`` is the next (row
    key, row); ``take`` hands over the next rows at once when their keys are the ones
    given.  Rows with a negative integer key (never written by noim) are read apart."""

    def __init__(self, conn: Connection, table: Table) -> None:
        (pk,) = pk_columns(table)
        self.at = at = list(table.columns).index(pk)
        self.apart: dict[str, Sequence[Any]] = {}
        if isinstance(pk.type, Integer):
            for r in conn.execute(select(table).where(pk < 0)):
                self.apart[row_key([r[at]])] = r
            stmt = select(table).where(pk >= 0).order_by(pk)
            self._key: Any = str
        else:
            stmt = select(table).order_by(*_text_order(conn, pk))
            self._key = _str
        self._pick = operator.itemgetter(at)
        self._parts = conn.execution_options(yield_per=BATCH).execute(stmt).partitions()
        self._rows: Sequence[Any] = []
        self._i = 0
        self.head: tuple[str, Sequence[Any]] | None = None
        self._fill()

    def _fill(self) -> None:
        while self._i >= len(self._rows):
            self._rows, self._i = next(self._parts, []), 0
            if not self._rows:
                self.head = None
                return
        row = self._rows[self._i]
        self.head = (self._key(row[self.at]), row)

    def advance(self) -> None:
        self._i += 1
        self._fill()

    def take(self, keys: Sequence[str]) -> Sequence[Any] | None:
        """The next ``len(keys)`` rows if their keys are ``keys`` (within one batch)."""
        i, n = self._i, len(keys)
        rows = self._rows[i : i + n]
        if len(rows) != n or list(map(self._key, map(self._pick, rows))) != keys:
            return None
        self._i += n
        self._fill()
        return rows


def _plain_events(conn: Connection, table: str) -> Iterator[tuple[str, Event]]:
    """The table's own audit rows other than grouped inserts, in merge order, then ``seq``."""
    log = _LOG.c
    stmt = (
        select(log.seq, log.row_key, log.action, log.field, log.new_value)
        .where(
            log.table_name == table,
            or_(log.field.is_(None), log.field != GROUPED_FIELD, log.action != "insert"),
        )
        .order_by(*_text_order(conn, log.row_key), log.seq)
    )
    for seq, key, action, field, text in _stream(conn, stmt):
        yield _str(key), Event(seq, 0, action, field, text, None)


def stray_rows(conn: Connection, tables: Sequence[str], report: Reporter, limit: int) -> None:
    """Audit rows of tables noim does not audit are checked only for canonical values."""
    log = _LOG.c
    stmt = select(log.seq, log.action, log.new_value).where(
        log.table_name.not_in(tables),
        or_(log.field.is_(None), log.field != GROUPED_FIELD, log.action != "insert"),
    )
    for seq, action, text in _stream(conn, stmt):
        check_canonical(seq, action, text, report, limit)


# --------------------------------------------------------------------------- grouped rows


def _expand(
    table: Any, key: Any, text: Any, only: str | None = None
) -> list[tuple[str, str, Held]] | None:
    """The rows a grouped audit row holds (``only``: of that table); None when noim could
    not have written it."""
    try:
        return [
            (name, _str(k), held)
            for name, k, held in expand_audit_row_values(_str(table), _str(key), text, only)
        ]
    except _BAD_JSON:
        return None


def _grouped(conn: Connection, where: Any) -> Iterator[tuple[int, Any, Any, Any]]:
    log = _LOG.c
    stmt = select(log.seq, log.table_name, log.row_key, log.new_value).where(where)
    return iter(_stream(conn, stmt.order_by(log.seq)))


@dataclass
class GroupedIndex:
    """Where the rows held by grouped audit rows are: per table, each grouped row's
    ``seq`` and the smallest key it holds of that table (in merge order), sorted; and
    which tables share grouped rows."""

    firsts: dict[str, list[tuple[MergeKey, int]]]
    families: list[set[str]]

    @classmethod
    def build(cls, conn: Connection, report: Reporter, limit: int) -> GroupedIndex:
        """One pass over the grouped audit rows; those noim could not have written are
        reported here (once) and left out of the index."""
        log = _LOG.c
        firsts: dict[str, list[tuple[MergeKey, int]]] = defaultdict(list)
        together: set[frozenset[str]] = set()
        where = (log.action == "insert") & (log.field == GROUPED_FIELD)
        for seq, table, key, text in _grouped(conn, where):
            try:
                held = held_keys(_str(table), _str(key), text)
            except _BAD_JSON:
                report.add(not_canonical(seq), limit)
                continue
            lowest: dict[str, MergeKey] = {}
            for name, keys in held:
                if not keys:
                    continue
                if isinstance(keys, range):  # numbered: the first is the smallest when >= 0
                    mk = merge_key(str(keys.start)) if keys.start >= 0 else _smallest(keys)
                else:
                    mk = min(map(merge_key, keys))
                if name not in lowest or mk < lowest[name]:
                    lowest[name] = mk
            for name, mk in lowest.items():
                firsts[name].append((mk, seq))
            together.add(frozenset(lowest))
        for entries in firsts.values():
            entries.sort()
        return cls(dict(firsts), _families(together))

    def family(self, table: str) -> set[str]:
        """The tables merged side by side with ``table`` (itself included)."""
        return next((f for f in self.families if table in f), {table})


def _name(item: tuple[str, str, Held]) -> str:
    return item[0]


def _smallest(keys: range) -> MergeKey:
    return min(merge_key(str(k)) for k in keys)


def _families(together: Iterable[frozenset[str]]) -> list[set[str]]:
    """Tables linked through grouped rows holding rows of several, as disjoint sets."""
    families: list[set[str]] = []
    for names in together:
        joined = set(names)
        for f in [f for f in families if f & joined]:
            families.remove(f)
            joined |= f
        families.append(joined)
    return families


class _Run:
    """The rows of one table held by one grouped audit row, in merge order; ``pos`` is the
    next row still to be merged."""

    __slots__ = ("helds", "keys", "mks", "pos", "seq", "tuples", "unique")

    def __init__(self, seq: int, rows: Sequence[tuple[str, str, Held]]) -> None:
        mks = [(len(k), k) for _name, k, _held in rows]  # merge_key, inlined
        if mks != sorted(mks):  # noim numbers them in order; anything else is sorted (stably)
            order = sorted(range(len(rows)), key=mks.__getitem__)
            rows, mks = [rows[i] for i in order], [mks[i] for i in order]
        self.seq, self.mks, self.pos = seq, mks, 0
        self.keys = [k for _name, k, _held in rows]
        self.helds = [held for _name, _k, held in rows]
        self.unique = len(set(self.keys)) == len(self.keys)
        self.tuples = all(type(held) is tuple for held in self.helds)


#: a table's heap of runs: (merge key of the run's next row, seq, tie-breaker, run)
_Heap = list[tuple[MergeKey, int, int, _Run]]


class Opener:
    """Opens (reads and expands) the grouped audit rows of a family of tables: when a
    table's merge reaches the smallest key an unopened grouped row holds of it, that row
    and the next ``OPEN_BATCH`` of the table are opened, and their rows of every table of
    the family are put on that table's heap."""

    def __init__(self, conn: Connection, family: set[str], index: GroupedIndex) -> None:
        self.conn, self.index = conn, index
        self.heaps: dict[str, _Heap] = {name: [] for name in family}
        self.next = dict.fromkeys(family, 0)
        self.opened: set[int] = set()
        self.ties = itertools.count()

    def peek(self, table: str) -> MergeKey | None:
        """Merge key of the smallest key an unopened grouped row holds of ``table``."""
        firsts, i = self.index.firsts.get(table, []), self.next[table]
        while i < len(firsts) and firsts[i][1] in self.opened:
            i += 1
        self.next[table] = i
        return firsts[i][0] if i < len(firsts) else None

    def open(self, table: str) -> None:
        firsts, i = self.index.firsts[table], self.next[table]
        seqs: list[int] = []
        while i < len(firsts) and len(seqs) < OPEN_BATCH:
            if firsts[i][1] not in self.opened:
                seqs.append(firsts[i][1])
            i += 1
        self.opened.update(seqs)
        log = _LOG.c
        for seq, name, key, text in self.conn.execute(
            select(log.seq, log.table_name, log.row_key, log.new_value).where(log.seq.in_(seqs))
        ):
            for part, rows in itertools.groupby(_expand(name, key, text) or (), key=_name):
                if part in self.heaps:
                    self.push(part, _Run(seq, list(rows)))

    def push(self, table: str, run: _Run) -> None:
        if run.pos < len(run.mks):
            heapq.heappush(self.heaps[table], (run.mks[run.pos], run.seq, next(self.ties), run))


# --------------------------------------------------------------------------- the account stream


def accounts(
    conn: Connection, table: Table, opener: Opener | None, report: Reporter, limit: int
) -> Iterator[tuple[MergeKey, str, Account] | Chunk | _Pause]:
    """(merge key, row key, account) of every row the audit trail knows in ``table``, in
    merge order; ``PAUSE`` after opening grouped rows (``opener``: of the table's family)."""
    names = [c.name for c in table.columns]
    plain = _plain_events(conn, table.name)
    if opener is None or (opener.peek(table.name) is None and not opener.heaps[table.name]):
        # no grouped rows: the table's own audit rows, grouped by key
        for key, group in itertools.groupby(plain, key=_key):
            yield merge_key(key), key, account([e for _k, e in group], names, report, limit)
        return
    heap = opener.heaps[table.name]
    head = next(plain, None)
    head_mk = merge_key(head[0]) if head is not None else None
    while True:
        current = head_mk
        if heap and (current is None or heap[0][0] < current):
            current = heap[0][0]
        first = opener.peek(table.name)
        if first is not None and (current is None or first <= current):
            opener.open(table.name)
            yield PAUSE
            continue
        if current is None:
            return
        if heap and heap[0][0] == current and head_mk != current:
            # a run's turn: its rows below every other source's next key are alone
            run = heapq.heappop(heap)[3]
            start = run.pos
            bound = _lowest(head_mk, heap[0][0] if heap else None, first)
            yield from _run_accounts(run, bound)
            opener.push(table.name, run)
            if run.pos > start:
                continue
        top = heap[0][3] if heap else None
        key = head[0] if head is not None and head_mk == current else top.keys[top.pos]  # type: ignore[union-attr]
        events: list[Event] = []
        while head is not None and head_mk == current:
            events.append(head[1])
            head = next(plain, None)
            head_mk = merge_key(head[0]) if head is not None else None
        if heap and heap[0][0] == current:
            while heap and heap[0][0] == current:
                run = heapq.heappop(heap)[3]
                held = run.helds[run.pos]
                events.append(Event(run.seq, run.pos + 1, "insert", GROUPED_FIELD, None, held))
                run.pos += 1
                opener.push(table.name, run)
            events.sort(key=_event_order)
        yield current, key, account(events, names, report, limit)


class Chunk(NamedTuple):
    """Consecutive rows (in merge order) whose accounts are each one grouped insert held
    as a tuple: compared with the table's next rows at once."""

    keys: list[str]
    helds: list[tuple[Any, ...]]
    mks: list[MergeKey]


def _run_accounts(
    run: _Run, bound: MergeKey | None
) -> Iterator[tuple[MergeKey, str, Account] | Chunk]:
    """The run's next rows whose keys are below ``bound`` and held once in the run: each
    one's account is its grouped insert alone (as a ``Chunk`` when there are several)."""
    mks, keys, helds, seq = run.mks, run.keys, run.helds, run.seq
    start = run.pos
    end = len(mks) if bound is None else bisect.bisect_left(mks, bound, start)
    if not run.unique:  # a key held twice in one grouped row: replayed as two events
        stop = start
        while stop < end and (stop + 1 == len(mks) or mks[stop + 1] != mks[stop]):
            stop += 1
        end = stop
    run.pos = end
    if end - start > 1 and run.tuples:
        yield Chunk(keys[start:end], helds[start:end], mks[start:end])  # type: ignore[arg-type]
        return
    for i in range(start, end):
        yield mks[i], keys[i], held_account(helds[i], seq)


def _lowest(*keys: MergeKey | None) -> MergeKey | None:
    present = [k for k in keys if k is not None]
    return min(present) if present else None


def _key(item: tuple[str, Event]) -> str:
    return item[0]


def _event_order(e: Event) -> tuple[int, int]:
    return (e.seq, e.part)
