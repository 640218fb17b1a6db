"""Database triggers that make the schema enforce "never delete, never rewrite".

* No noim table accepts ``DELETE`` (trial data is voided, never deleted), nor
  ``TRUNCATE`` on PostgreSQL.
* ``allocations`` and ``audit_log`` accept no ``UPDATE`` either.
* Except ``identity_keys`` (``DELETABLE``), which holds no trial data.

Migrations call ``install(op, tables)`` / ``remove(op, tables)`` with explicit
table lists.  On SQLite a batch-mode table rebuild drops the table's triggers:
a migration that rebuilds a table must install them again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: tables whose rows may never be updated (besides never deleted)
APPEND_ONLY = (
    "allocations",
    "audit_log",
    "allocation_list",
    "data_freezes",
    "data_freeze_datasets",
    "masking_key",
    "auth_events",
)

#: the one table whose rows may be deleted: not trial data but the keys of the identity
#: records' digests in the audit trail; deleting one completes an erasure on request
#: (``noim.db.identity_audit``)
DELETABLE = ("identity_keys",)

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION noim_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'noim: % on table % is not allowed: %', TG_OP, TG_TABLE_NAME, TG_ARGV[0]
        USING ERRCODE = 'restrict_violation';
END
$$
"""

NO_DELETE_WHY = "noim never deletes rows; void the record with a reason"
NO_UPDATE_WHY = "rows of this table are written once and never changed"


def _statements(dialect: str, table: str) -> list[str]:
    out: list[str] = []
    if dialect == "postgresql":
        out.append(
            f"CREATE TRIGGER noim_no_delete BEFORE DELETE ON {table} FOR EACH ROW "
            f"EXECUTE FUNCTION noim_refuse_change('{NO_DELETE_WHY}')"
        )
        out.append(
            f"CREATE TRIGGER noim_no_truncate BEFORE TRUNCATE ON {table} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION noim_refuse_change('{NO_DELETE_WHY}')"
        )
        if table in APPEND_ONLY:
            out.append(
                f"CREATE TRIGGER noim_no_update BEFORE UPDATE ON {table} FOR EACH ROW "
                f"EXECUTE FUNCTION noim_refuse_change('{NO_UPDATE_WHY}')"
            )
    elif dialect == "sqlite":
        out.append(
            f"CREATE TRIGGER trg_{table}_no_delete BEFORE DELETE ON {table} BEGIN "
            f"SELECT RAISE(ABORT, 'noim: DELETE on table {table} is not allowed: {NO_DELETE_WHY}'); END"
        )
        if table in APPEND_ONLY:
            out.append(
                f"CREATE TRIGGER trg_{table}_no_update BEFORE UPDATE ON {table} BEGIN "
                f"SELECT RAISE(ABORT, 'noim: UPDATE on table {table} is not allowed: {NO_UPDATE_WHY}'); END"
            )
    else:
        raise NotImplementedError(f"database {dialect!r}: noim supports sqlite and postgresql")
    return out


def _drop_statements(dialect: str, table: str) -> list[str]:
    if dialect == "postgresql":
        return [
            f"DROP TRIGGER IF EXISTS noim_no_delete ON {table}",
            f"DROP TRIGGER IF EXISTS noim_no_truncate ON {table}",
            f"DROP TRIGGER IF EXISTS noim_no_update ON {table}",
        ]
    return [
        f"DROP TRIGGER IF EXISTS trg_{table}_no_delete",
        f"DROP TRIGGER IF EXISTS trg_{table}_no_update",
    ]


def install(op: Any, tables: Iterable[str]) -> None:
    """Create the protecting triggers on ``tables`` (``op`` is Alembic's ``op``)."""
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(_PG_FUNCTION)
    for table in tables:
        for sql in _statements(dialect, table):
            op.execute(sql)


def remove(op: Any, tables: Iterable[str], drop_function: bool = False) -> None:
    """Drop the protecting triggers from ``tables``."""
    dialect = op.get_bind().dialect.name
    for table in tables:
        for sql in _drop_statements(dialect, table):
            op.execute(sql)
    if drop_function and dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS noim_refuse_change()")
