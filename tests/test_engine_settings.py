"""Database set-up for the web pages: PostgreSQL without JIT; the partial audit index; the
planner's statistics."""

from __future__ import annotations

from pathlib import Path

import pytest

from noim.db.audit_grouped import GROUPED_FIELD
from noim.db.models import AuditLog
from noim.db.session import Database, make_engine
from noim.services import imports
from noim.services.imports import run_import
from tests.conftest import Actors
from tests.factories import family_with_children


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


def _analysed(db: Database, table: str) -> bool:
    """Whether the planner has statistics of ``table``."""
    with db.engine.connect() as conn:
        if db.dialect == "sqlite":
            if not conn.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"
            ).first():
                return False
            row = conn.exec_driver_sql("SELECT 1 FROM sqlite_stat1 WHERE tbl = ?", (table,))
            return row.first() is not None
        seen = conn.exec_driver_sql(
            "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = %s", (table,)
        ).scalar_one()
        return seen is not None


def test_refresh_statistics_gives_the_planner_statistics(db: Database, actors: Actors) -> None:
    family_with_children(db, actors["coord_gla"], "GLA", (10, 20))
    assert not _analysed(db, "children")
    db.refresh_statistics()
    assert _analysed(db, "children") and _analysed(db, "families")


def _two_families(db: Database, actors: Actors) -> Path:
    family_with_children(db, actors["coord_gla"], "GLA", (10,))  # the example adds to G-0001-Z
    family_with_children(db, actors["coord_cro"], "CRO", (10,))
    return Path(__file__).parent.parent / "examples" / "families.csv"  # 5 new records


def test_a_large_import_refreshes_the_statistics(
    db: Database, actors: Actors, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = _two_families(db, actors)
    monkeypatch.setattr(imports, "STATISTICS_AFTER", 5)
    run_import(db, actors["admin"], "families", example, dry_run=True)
    assert not _analysed(db, "children")  # a dry run writes nothing
    assert run_import(db, actors["admin"], "families", example).new_records == 5
    assert _analysed(db, "children")


def test_a_small_import_leaves_the_statistics(db: Database, actors: Actors) -> None:
    example = _two_families(db, actors)
    assert run_import(db, actors["admin"], "families", example).new_records == 5
    assert not _analysed(db, "children")
