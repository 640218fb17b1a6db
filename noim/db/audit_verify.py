"""Verifying the audit trail: the hash chain, and the data against the chain.

``verify_chain`` recomputes every row's hash in sequence order: a row changed
behind noim's back no longer matches its hash; a row removed leaves a gap in
the sequence and a broken link; a row slipped in breaks the link after it; rows
cut from the end no longer reach the head.

``verify_chain(conn, at=seq)`` also returns the hash of row ``seq``, which
``noim audit verify --anchor`` compares with an anchor kept outside the database: a
chain rewritten consistently (every hash and the head recomputed) verifies on its
own, but no longer has the anchored hash.

``verify_data`` replays the audit trail (inserts, then field changes) and
compares the result with every audited table: a trial-data row changed,
inserted or deleted without an audit row is found too.  A grouped insert (one audit
row for many rows, ``noim.db.audit_grouped.insert_columns``) is expanded back into its
rows, so each of them is compared like any other; so is a record written with its parts
in one audit row (``noim.db.audit_grouped.insert_records``).  The replay streams, table
by table, in row-key order (``noim.db.audit_replay``), so memory stays flat as the
trial grows.

Both read many statements: run them in one snapshot (``Database.snapshot``) so that
users writing meanwhile neither break the chain's end nor add rows the replay has not
seen.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.engine import Connection

from noim.db import audit_replay as replay
from noim.db.audit import GENESIS_HASH, audited_tables, chain_hash, model_for
from noim.db.audit_compare import RowCodec, audited_form, compare
from noim.db.models.audit import AuditHead, AuditLog

_BATCH = 5000


@dataclass(frozen=True)
class ChainReport:
    rows: int
    first_bad_seq: int | None
    problem: str | None
    #: hash of the last row checked (keep it outside the database to detect a wholesale rewrite)
    last_hash: str | None = None
    #: hash of row ``at`` when ``verify_chain(conn, at=...)`` reached it
    hash_at: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass
class DataReport:
    tables: int = 0
    rows: int = 0
    problems: list[str] = field(default_factory=list)
    total_problems: int = 0

    @property
    def ok(self) -> bool:
        return self.total_problems == 0

    def add(self, message: str, limit: int) -> None:
        self.total_problems += 1
        if len(self.problems) < limit:
            self.problems.append(message)


def _audit_rows(conn: Connection) -> Iterator[Any]:
    result = conn.execution_options(yield_per=_BATCH).execute(
        select(AuditLog.__table__).order_by(AuditLog.seq)
    )
    for partition in result.mappings().partitions():
        yield from partition


@contextmanager
def _few_collections() -> Iterator[None]:
    """Run the cyclic garbage collector rarely: verifying makes millions of short-lived
    tuples (freed by reference counting, no cycles), and the collector's passes over them
    cost a third of the time.  Memory is unchanged; the thresholds are restored after."""
    before = gc.get_threshold()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def verify_chain(conn: Connection, at: int | None = None) -> ChainReport:
    """Recompute the hash chain from the first row to the head (and note row ``at``'s hash)."""
    found: dict[str, str] = {"hash": GENESIS_HASH} if at == 0 else {}
    with _few_collections():
        count, first_bad, problem, last = _walk(conn, at, found)
    return ChainReport(count, first_bad, problem, last, found.get("hash"))


def _walk(
    conn: Connection, at: int | None, found: dict[str, str]
) -> tuple[int, int | None, str | None, str | None]:
    """(rows checked, first bad row, problem, last hash); row ``at``'s hash into ``found``."""
    expected_seq, prev, count = 1, GENESIS_HASH, 0
    for row in _audit_rows(conn):
        seq = row["seq"]
        if seq != expected_seq:
            return (
                count,
                expected_seq if seq > expected_seq else seq,
                f"audit row {expected_seq} is missing (the next row is {seq}): rows were deleted",
                None,
            )
        if row["prev_hash"] != prev:
            return (
                count,
                seq,
                f"audit row {seq} does not link to row {seq - 1}: a row was inserted, "
                "deleted or changed before it",
                None,
            )
        if chain_hash(prev, row) != row["hash"]:
            return (
                count,
                seq,
                f"audit row {seq} ({row['table_name']} {row['row_key']}) was changed "
                "after it was written: its content no longer matches its hash",
                None,
            )
        if seq == at:
            found["hash"] = row["hash"]
        prev, expected_seq, count = row["hash"], expected_seq + 1, count + 1
    head = conn.execute(
        select(AuditHead.last_seq, AuditHead.last_hash).where(AuditHead.id == 1)
    ).one_or_none()
    if head is None:
        return count, None, "the audit_head row is missing", None
    if head.last_seq != count or head.last_hash != prev:
        return (
            count,
            count + 1 if head.last_seq > count else head.last_seq,
            f"the chain ends at row {count} but its head records row {head.last_seq}: "
            "rows were removed from the end or the head was altered",
            None,
        )
    return count, None, None, prev


def model_table(name: str) -> Table:
    return model_for(name).__table__  # type: ignore[return-value]


def verify_data(conn: Connection, limit: int = 20) -> DataReport:
    """Compare every audited table with the audit trail's account of it.

    Streams (``noim.db.audit_replay``): memory stays flat as the trial grows.  Run it in
    one snapshot (``Database.snapshot``) when others may be writing.
    """
    with _few_collections():
        return _verify_data(conn, limit)


def _verify_data(conn: Connection, limit: int) -> DataReport:
    report = DataReport()
    index = replay.GroupedIndex.build(conn, report, limit)
    tables = audited_tables()
    replay.stray_rows(conn, [t.name for t in tables], report, limit)
    done: set[str] = set()
    for table in tables:
        if table.name in done:
            continue
        family = index.family(table.name)
        members = [t for t in tables if t.name in family] or [table]
        opener = replay.Opener(conn, {t.name for t in members}, index)
        # tables sharing grouped audit rows take turns, each until it has opened some
        merges = [_verify_table(conn, t, opener, report, limit) for t in members]
        while merges:
            merges = [m for m in merges if next(m, _DONE) is not _DONE]
        done.update(t.name for t in members)
        report.tables += len(members)
    return report


_DONE = object()


def _verify_table(
    conn: Connection,
    table: Table,
    opener: replay.Opener,
    report: DataReport,
    limit: int,
) -> Iterator[None]:
    """Merge-join the table's rows with the trail's accounts of them (both in merge
    order), pausing (yielding) whenever grouped audit rows have been opened."""
    codec = RowCodec(table, audited_form(conn, table.name))
    stored = replay.StoredRows(conn, table)
    known = replay.accounts(conn, table, opener, report, limit)
    pending: list[Any] = []  # accounts of a chunk that had to be taken one by one
    while True:
        audited: Any = pending.pop() if pending else next(known, None)
        if audited is replay.PAUSE:
            yield
            continue
        if isinstance(audited, replay.Chunk):
            rows = stored.take(audited.keys)
            if rows is None:  # the table's rows do not line up: one by one
                pending += reversed(
                    list(zip(audited.mks, audited.keys, audited.helds, strict=True))
                )
                continue
            report.rows += len(rows)
            agree = map(codec.agrees, rows, audited.helds)
            for key, row, held, ok in zip(audited.keys, rows, audited.helds, agree, strict=True):
                if not ok:
                    compare(codec, key, row, held, report, limit)
            continue
        while stored.head is not None and (
            audited is None
            or (audited[1] != stored.head[0] and replay.merge_key(stored.head[0]) < audited[0])
        ):
            # a table row the trail does not know
            report.rows += 1
            compare(codec, stored.head[0], stored.head[1], None, report, limit)
            stored.advance()
        if audited is None:
            break
        _mk, key, account = audited
        if stored.head is not None and stored.head[0] == key:
            row = stored.head[1]
            report.rows += 1
            if type(account) is not tuple or not codec.agrees(row, account):  # usual case inline
                compare(codec, key, row, account, report, limit)
            stored.advance()
        else:  # the trail knows a row the table lacks (or holds apart)
            other = stored.apart.pop(key, None)
            report.rows += other is not None
            compare(codec, key, other, account, report, limit)
    for key, other in stored.apart.items():
        report.rows += 1
        compare(codec, key, other, None, report, limit)
