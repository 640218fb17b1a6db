"""Raw database access for tests that act *behind noim's back* (tampering, constraint checks)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from noim.db.session import make_engine


@contextmanager
def raw(url: str) -> Iterator[Connection]:
    """A plain connection in one transaction, committed at the end."""
    engine = make_engine(url, null_pool=True)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def drop_protection(conn: Connection, table: str) -> None:
    """Remove the no-delete / no-update triggers of ``table`` (what an attacker with DDL rights could do)."""
    if conn.dialect.name == "postgresql":
        for name in ("noim_no_delete", "noim_no_update", "noim_no_truncate"):
            conn.execute(text(f"DROP TRIGGER IF EXISTS {name} ON {table}"))
    else:
        for kind in ("no_delete", "no_update"):
            conn.execute(text(f"DROP TRIGGER IF EXISTS trg_{table}_{kind}"))


def scalar(url: str, sql: str, **params: Any) -> Any:
    with raw(url) as conn:
        return conn.execute(text(sql), params).scalar()
