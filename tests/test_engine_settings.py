"""PostgreSQL connections as noim opens them: no JIT compilation (short statements)."""

from __future__ import annotations

import pytest

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
