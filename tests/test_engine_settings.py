"""Database set-up for the web pages: PostgreSQL without JIT; the partial audit index."""

from __future__ import annotations

import pytest

from noim.db.audit_grouped import GROUPED_FIELD
from noim.db.models import AuditLog
from noim.db.session import Database, make_engine


@pytest.mark.postgresql_only
def test_postgresql_connections_run_without_jit(backend: str, db: Database) -> None:
    assert backend == "postgresql"
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW jit").scalar_one() == "off"
    other = make_engine(db.url, null_pool=True)  # a fresh engine, every new connection
    try:
        for _ in range(2):
            with other.connect() as conn:
                assert conn.exec_driver_sql("SHOW jit").scalar_one() == "off"
    finally:
        other.dispose()


def test_the_grouped_audit_index_holds_the_grouped_rows() -> None:
    """The partial index's predicate names the field grouped audit rows are written with."""
    (index,) = [i for i in AuditLog.__table__.indexes if i.name == "ix_audit_log_grouped_table"]
    for dialect in ("sqlite", "postgresql"):
        assert str(index.dialect_options[dialect]["where"]) == f"field = '{GROUPED_FIELD}'"
