"""Verifying the audit trail: the hash chain, and the data against the chain.

``verify_chain`` recomputes every row's hash in sequence order: a row changed
behind noim's back no longer matches its hash; a row removed leaves a gap in
the sequence and a broken link; a row slipped in breaks the link after it; rows
cut from the end no longer reach the head.

``verify_data`` replays the audit trail (inserts, then field changes) and
compares the result with every audited table: a trial-data row changed,
inserted or deleted without an audit row is found too.  A grouped insert (one audit
row for many rows, ``noim.db.audit_grouped.insert_columns``) is expanded back into its
rows, so each of them is compared like any other; so is a record written with its parts
in one audit row (``noim.db.audit_grouped.insert_records``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.engine import Connection

from noim.db import bulk
from noim.db.audit import (
    GENESIS_HASH,
    audited_tables,
    chain_hash,
    model_for,
    pk_columns,
    row_key,
)
from noim.db.audit_grouped import GROUPED_FIELD, expand_audit_row
from noim.db.identity_audit import all_keys, identifying, token_json
from noim.db.models.audit import AuditHead, AuditLog

_BATCH = 5000


@dataclass(frozen=True)
class ChainReport:
    rows: int
    first_bad_seq: int | None
    problem: str | None
    #: hash of the last row checked (keep it outside the database to detect a wholesale rewrite)
    last_hash: str | None = None

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


def verify_chain(conn: Connection) -> ChainReport:
    """Recompute the hash chain from the first row to the head."""
    expected_seq, prev, count = 1, GENESIS_HASH, 0
    for row in _audit_rows(conn):
        seq = row["seq"]
        if seq != expected_seq:
            return ChainReport(
                count,
                expected_seq if seq > expected_seq else seq,
                f"audit row {expected_seq} is missing (the next row is {seq}): rows were deleted",
            )
        if row["prev_hash"] != prev:
            return ChainReport(
                count,
                seq,
                f"audit row {seq} does not link to row {seq - 1}: a row was inserted, "
                "deleted or changed before it",
            )
        if chain_hash(prev, row) != row["hash"]:
            return ChainReport(
                count,
                seq,
                f"audit row {seq} ({row['table_name']} {row['row_key']}) was changed "
                "after it was written: its content no longer matches its hash",
            )
        prev, expected_seq, count = row["hash"], expected_seq + 1, count + 1
    head = conn.execute(
        select(AuditHead.last_seq, AuditHead.last_hash).where(AuditHead.id == 1)
    ).one_or_none()
    if head is None:
        return ChainReport(count, None, "the audit_head row is missing")
    if head.last_seq != count or head.last_hash != prev:
        return ChainReport(
            count,
            count + 1 if head.last_seq > count else head.last_seq,
            f"the chain ends at row {count} but its head records row {head.last_seq}: "
            "rows were removed from the end or the head was altered",
        )
    return ChainReport(count, None, None, prev)


def _replay(
    conn: Connection, report: DataReport, limit: int
) -> dict[str, dict[str, dict[str, str]]]:
    """table -> row key -> column -> canonical JSON value, as the audit trail says."""
    state: dict[str, dict[str, dict[str, str]]] = defaultdict(dict)
    for row in _audit_rows(conn):
        table, key = row["table_name"], row["row_key"]
        try:
            if row["action"] == "insert" and row["field"] == GROUPED_FIELD:
                for name, held, values in expand_audit_row(table, key, row["new_value"]):
                    state[name][held] = {k: _dump(v) for k, v in values.items()}
            elif row["action"] == "insert":
                values = json.loads(row["new_value"])
                state[table][key] = {k: _dump(v) for k, v in values.items()}
            else:
                state[table].setdefault(key, {})[row["field"]] = _dump(json.loads(row["new_value"]))
        except (TypeError, ValueError, AttributeError, KeyError):
            report.add(
                f"audit row {row['seq']} holds a value that noim did not write (not canonical JSON)",
                limit,
            )
    return state


def model_table(name: str) -> Table:
    return model_for(name).__table__  # type: ignore[return-value]


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def audited_form(conn: Connection, table: str) -> Callable[[str, str, str, str | None], bool]:
    """``same(row_key, column, stored_json, audited_json)``: whether a stored value is the
    one the audit trail holds.  Identifying values of the identity tables are held as keyed
    digests (``noim.db.identity_audit``); an erased record has no key and only NULLs; audit
    rows written before digests were introduced hold the value itself."""
    columns = identifying(table)
    if not columns:
        # a column added after the row was audited holds NULL ("null"), as no audit says
        return lambda _key, _column, stored, audited: stored == (audited or "null")
    keys = all_keys(conn, table)

    def same(key: str, column: str, stored: str, audited: str | None) -> bool:
        if stored == (audited or "null"):
            return True
        if column not in columns or key not in keys:
            return False
        return token_json(keys[key], table, column, stored) == audited

    return same


def verify_data(conn: Connection, limit: int = 20) -> DataReport:
    """Compare every audited table with the audit trail's account of it."""
    report = DataReport()
    state = _replay(conn, report, limit)
    for table in audited_tables():
        report.tables += 1
        expected = state.get(table.name, {})
        pks = pk_columns(table)
        encoders = [(c.name, bulk.column_encoder(c)) for c in table.columns]
        stored_as = audited_form(conn, table.name)
        seen: set[str] = set()
        result = conn.execution_options(yield_per=_BATCH).execute(select(table))
        for partition in result.mappings().partitions():
            for row in partition:
                report.rows += 1
                key = row_key([row[c.name] for c in pks])
                seen.add(key)
                audited = expected.get(key)
                if audited is None:
                    report.add(
                        f"{table.name} row {key} has no audit record: inserted behind noim's back",
                        limit,
                    )
                    continue
                for name, enc in encoders:
                    if not stored_as(key, name, enc(row[name]), audited.get(name)):
                        # values are not shown: they may be identifiable or reveal an arm
                        report.add(
                            f"{table.name} row {key} field {name} differs from the audit trail: "
                            "changed behind noim's back",
                            limit,
                        )
        for key in sorted(set(expected) - seen):
            report.add(
                f"{table.name} row {key} is in the audit trail but not in the table: deleted behind "
                "noim's back",
                limit,
            )
    return report
