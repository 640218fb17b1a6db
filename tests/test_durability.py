"""SQLite durability: every noim connection commits with ``synchronous = FULL`` in WAL mode.

With ``synchronous = NORMAL`` (noim before issue 11) a transaction reported committed could be
lost on a power failure; FULL syncs the write-ahead log at every commit.
"""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Connection

from noim.db import bulk, migrate
from noim.db.session import Database, make_engine
from tests.conftest import Actors

FULL = 2  # what PRAGMA synchronous reports for FULL (0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA)


def _pragmas(conn: Connection) -> tuple[int, str, int]:
    return (
        int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one()),
        str(conn.exec_driver_sql("PRAGMA journal_mode").scalar_one()),
        int(conn.exec_driver_sql("PRAGMA fullfsync").scalar_one()),
    )


@pytest.mark.sqlite_only
def test_every_connection_commits_durably(backend: str, db: Database, actors: Actors) -> None:
    assert backend == "sqlite"
    with db.engine.connect() as conn:  # a read
        assert _pragmas(conn) == (FULL, "wal", 1)
    with db.write(actors["admin"], reason="test") as s:  # a unit of work
        assert _pragmas(s.connection()) == (FULL, "wal", 1)
    other = make_engine(db.url, null_pool=True)  # a fresh engine, every new connection
    try:
        for _ in range(2):
            with other.connect() as conn:
                assert _pragmas(conn)[0] == FULL
    finally:
        other.dispose()


@pytest.mark.sqlite_only
def test_large_writes_keep_synchronous_full(backend: str, db: Database, actors: Actors) -> None:
    with db.write(actors["admin"], reason="test") as s:
        conn = s.connection()
        with bulk.large_writes(conn):
            assert _pragmas(conn) == (FULL, "wal", 1)
        assert _pragmas(conn) == (FULL, "wal", 1)


@pytest.mark.sqlite_only
def test_migrations_run_with_synchronous_full(backend: str, db_url: str) -> None:
    with migrate.migration_connection(db_url) as conn:
        assert _pragmas(conn) == (FULL, "wal", 1)
