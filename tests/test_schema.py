"""The database itself enforces the trial's rules, whatever writes to it."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from noim.db.base import NAMING_CONVENTION, Base
from noim.db.session import Database
from tests.conftest import Actors
from tests.dbutil import drop_protection, raw
from tests.factories import family_with_children


def test_every_foreign_key_restricts_deletes() -> None:
    fks = [fk for table in Base.metadata.tables.values() for fk in table.foreign_keys]
    assert fks
    assert [str(fk.parent) for fk in fks if fk.ondelete != "RESTRICT"] == []


def test_every_constraint_is_named_by_the_convention() -> None:
    assert Base.metadata.naming_convention == NAMING_CONVENTION
    for table in Base.metadata.tables.values():
        for constraint in table.constraints:
            assert constraint.name, f"{table.name}: unnamed {constraint}"


@pytest.fixture
def family_ids(db: Database, actors: Actors) -> tuple[int, int]:
    fam = family_with_children(db, actors["coord_gla"], "GLA", (6,))
    with db.read() as s:
        row = s.execute(
            text(
                "SELECT f.id, c.id FROM families f JOIN children c ON c.family_id = f.id "
                "WHERE f.trial_id = :t"
            ),
            {"t": fam.trial_id},
        ).one()
    return int(row[0]), int(row[1])


BAD_UPDATES = [
    ("children", "sex = 'x'", "sex_code"),
    ("children", "entered_care_on = '2000-01-01'", "entered_care_after_birth"),
    (
        "children",
        "eligibility_status = 'ineligible', eligibility_decided_on = '2024-05-01'",
        "ineligible_has_reason",
    ),
    ("children", "voided_at = CURRENT_TIMESTAMP", "void_has_reason"),
    ("children", "child_number = 0", "child_number_range"),
    ("children", "date_of_birth = NULL", None),
    ("families", "site_seq = -1", "site_seq_positive"),
]


@pytest.mark.parametrize(("table", "assignment", "constraint"), BAD_UPDATES)
def test_check_and_not_null_constraints(
    db_url: str, family_ids: tuple[int, int], table: str, assignment: str, constraint: str | None
) -> None:
    family_id, child_id = family_ids
    key = child_id if table == "children" else family_id
    with pytest.raises(IntegrityError) as info, raw(db_url) as conn:
        conn.execute(text(f"UPDATE {table} SET {assignment} WHERE id = :k"), {"k": key})
    if constraint:
        assert constraint in str(info.value)


def test_unique_trial_ids(db_url: str, family_ids: tuple[int, int]) -> None:
    with pytest.raises(IntegrityError), raw(db_url) as conn:
        conn.execute(
            text(
                "INSERT INTO families (trial_id, site_id, site_seq, registered_at, registered_by_id) "
                "SELECT trial_id, site_id, site_seq + 100, registered_at, registered_by_id FROM families"
            )
        )


def _insert_allocation(conn: Connection, family_id: int, seq: int) -> None:
    conn.execute(
        text(
            "INSERT INTO allocations (family_id, arm_code, method, stratum, factors, sequence_number, masked_code, "
            "randomised_at, randomised_by_id) VALUES (:f, 'NIM', 'minimisation', 'GLA', '{}', :n, :m, "
            "CURRENT_TIMESTAMP, 1)"
        ),
        {"f": family_id, "n": seq, "m": f"M{seq}"},
    )


def test_one_allocation_per_family(db_url: str, family_ids: tuple[int, int]) -> None:
    family_id, _ = family_ids
    with raw(db_url) as conn:
        _insert_allocation(conn, family_id, 1)
    with pytest.raises(IntegrityError), raw(db_url) as conn:
        _insert_allocation(conn, family_id, 2)


def test_allocations_cannot_be_updated_or_deleted(db_url: str, family_ids: tuple[int, int]) -> None:
    family_id, _ = family_ids
    with raw(db_url) as conn:
        _insert_allocation(conn, family_id, 1)
    with (
        pytest.raises(DBAPIError, match="noim: UPDATE on table allocations is not allowed"),
        raw(db_url) as conn,
    ):
        conn.execute(text("UPDATE allocations SET arm_code = 'SAU'"))
    with (
        pytest.raises(DBAPIError, match="noim: DELETE on table allocations is not allowed"),
        raw(db_url) as conn,
    ):
        conn.execute(text("DELETE FROM allocations"))


@pytest.mark.parametrize(
    "table", ["families", "children", "users", "sites", "decision_types", "audit_head"]
)
def test_no_row_is_ever_deleted(db_url: str, family_ids: tuple[int, int], table: str) -> None:
    with (
        pytest.raises(
            DBAPIError,
            match=f"noim: DELETE on table {table} is not allowed: noim never deletes rows",
        ),
        raw(db_url) as conn,
    ):
        conn.execute(text(f"DELETE FROM {table}"))


@pytest.mark.postgresql_only
def test_no_table_can_be_truncated(db_url: str) -> None:
    with pytest.raises(DBAPIError, match="noim: TRUNCATE on table families"), raw(db_url) as conn:
        conn.execute(text("TRUNCATE families CASCADE"))


def test_audit_rows_are_append_only(db_url: str, family_ids: tuple[int, int]) -> None:
    with pytest.raises(DBAPIError, match="noim: UPDATE on table audit_log"), raw(db_url) as conn:
        conn.execute(text("UPDATE audit_log SET reason = 'x'"))


def test_foreign_keys_refuse_dangling_and_restrict_deletes(
    db_url: str, family_ids: tuple[int, int]
) -> None:
    with pytest.raises(IntegrityError), raw(db_url) as conn:
        conn.execute(text("UPDATE children SET family_id = 999999"))
    # even with the no-delete trigger gone, a referenced row cannot be deleted
    with pytest.raises(IntegrityError), raw(db_url) as conn:
        drop_protection(conn, "families")
        conn.execute(text("DELETE FROM families"))


def test_timestamps_come_back_timezone_aware(db: Database, family_ids: tuple[int, int]) -> None:
    from noim.db.models import Family

    with db.read() as s:
        family = s.get(Family, family_ids[0])
        assert family is not None and family.registered_at.tzinfo is not None
        assert family.registered_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
