"""The audit trail: every change recorded in the same transaction, hash-chained, verifiable."""

from __future__ import annotations

import json
import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import delete, func, select, text, update

import noim
from noim.db import audit as audit_db
from noim.db.base import utcnow
from noim.db.models import Allocation, AuditLog, Child, Family, FollowUpVisit, UnitCost
from noim.db.session import Database
from noim.domain.exceptions import (
    PermissionDenied,
    ReasonRequired,
    RecordProtected,
    ValidationError,
)
from noim.services import audit, families, users
from tests.conftest import Actors
from tests.dbutil import drop_protection, raw
from tests.factories import family_with_children


def audit_count(db: Database) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(AuditLog)) or 0)


def test_insert_is_audited_with_the_whole_row(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    fam = families.register_family(db, coord, "GLA", "GCC")
    rows = audit.history(db, actors["admin"], "families", fam.trial_id)
    assert len(rows) == 1
    row = rows[0]
    assert (row.action, row.user, row.role, row.field, row.old) == (
        "insert",
        "coord_gla",
        "coordinator",
        None,
        None,
    )
    values = json.loads(row.new or "")
    assert values["trial_id"] == fam.trial_id and values["site_seq"] == 1
    assert row.recorded_at.tzinfo is not None
    with db.read() as s:
        stored = s.scalar(select(AuditLog).where(AuditLog.seq == row.seq))
        assert stored is not None and stored.noim_version == noim.__version__


def test_update_records_each_field_old_new_and_reason(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    fam = family_with_children(db, coord, "GLA", (8,))
    child = fam.children[0]
    families.correct_child(
        db,
        coord,
        child.trial_id,
        {"sex": "male", "date_of_birth": child.date_of_birth - timedelta(days=3)},
        reason="typo on the referral form",
    )
    rows = [
        r
        for r in audit.history(db, actors["admin"], "children", child.trial_id)
        if r.action == "update"
    ]
    assert {(r.field, r.old, r.new) for r in rows} == {
        ("sex", '"female"', '"male"'),
        (
            "date_of_birth",
            f'"{child.date_of_birth}"',
            f'"{child.date_of_birth - timedelta(days=3)}"',
        ),
    }
    assert {r.reason for r in rows} == {"typo on the referral form"}


def test_void_is_audited_with_its_reason(db: Database, actors: Actors) -> None:
    coord = actors["coord_cro"]
    fam = family_with_children(db, coord, "CRO", (3, 20))
    families.void_family(db, coord, fam.trial_id, reason="registered twice")
    for table, key in [("families", fam.trial_id), ("children", fam.children[1].trial_id)]:
        voids = [r for r in audit.history(db, actors["admin"], table, key) if r.action == "void"]
        assert {r.field for r in voids} == {"voided_at", "void_reason"}
        assert {r.reason for r in voids} == {"registered twice"}


def test_a_rejected_change_writes_nothing(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    fam = families.register_family(db, coord, "GLA")
    before = audit_count(db)
    with pytest.raises(ValidationError):
        families.add_child(db, coord, fam.trial_id, date(2024, 5, 1), "female", date(2024, 4, 1))
    # a failure after the flush (audit rows already written) rolls back with the data
    with pytest.raises(RuntimeError, match="boom"), db.write(coord) as s:
        s.add(
            UnitCost(
                code="sw_hour",
                service="Social worker",
                unit="hour",
                cost=45,
                currency="GBP",
                price_year=2024,
            )
        )
        s.flush()
        raise RuntimeError("boom")
    assert audit_count(db) == before
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(UnitCost)) == 0
    assert audit.verify(db, actors["admin"]).ok


def _visit(db: Database, actors: Actors) -> int:
    fam = family_with_children(db, actors["coord_gla"], "GLA", (30,))
    with db.write(actors["coord_gla"]) as s:
        child_id = s.scalar(select(Child.id).where(Child.trial_id == fam.children[0].trial_id))
        visit = FollowUpVisit(
            child_id=child_id,
            timepoint_code="baseline",
            anchor_date=date(2024, 3, 1),
            target_date=date(2024, 3, 29),
            window_start=date(2024, 3, 29),
            window_end=date(2024, 6, 7),
            status="completed",
            completed_on=date(2024, 4, 2),
            completed_at=utcnow(),
        )
        s.add(visit)
        s.flush()
        return visit.id


def test_changing_a_completed_record_needs_a_reason(db: Database, actors: Actors) -> None:
    visit_id = _visit(db, actors)
    with (
        pytest.raises(
            ReasonRequired,
            match=r"followup_visits row .* is marked complete; changing completed_on",
        ),
        db.write(actors["coord_gla"]) as s,
    ):
        visit = s.get(FollowUpVisit, visit_id)
        assert visit is not None
        visit.completed_on = date(2024, 4, 3)
    with db.write(actors["coord_gla"], reason="date misread from the diary") as s:
        visit = s.get(FollowUpVisit, visit_id)
        assert visit is not None
        visit.completed_on = date(2024, 4, 3)
    rows = audit.history(db, actors["admin"], "followup_visits", str(visit_id))
    assert [(r.field, r.old, r.new, r.reason) for r in rows if r.action == "update"] == [
        ("completed_on", '"2024-04-02"', '"2024-04-03"', "date misread from the diary")
    ]


def test_orm_delete_and_unaudited_dml_are_refused(db: Database, actors: Actors) -> None:
    fam = families.register_family(db, actors["coord_gla"], "GLA")
    with (
        pytest.raises(RecordProtected, match="never deleted; void"),
        db.write(actors["coord_gla"]) as s,
    ):
        s.delete(s.scalar(select(Family).where(Family.trial_id == fam.trial_id)))
    with (
        pytest.raises(RuntimeError, match="direct UPDATE on audited table families"),
        db.write(actors["coord_gla"]) as s,
    ):
        s.execute(update(Family).values(in_care_proceedings=True))
    with (
        pytest.raises(RuntimeError, match="direct DELETE on audited table families"),
        db.write(actors["coord_gla"]) as s,
    ):
        s.execute(delete(Family))
    with pytest.raises(RuntimeError, match="read-only unit of work"), db.read() as s:
        s.add(UnitCost(code="x", service="x", unit="x", cost=1, currency="GBP", price_year=2024))
        s.flush()


def test_bulk_insert_and_update_are_audited(db: Database, actors: Actors) -> None:
    admin = actors["admin"]
    rows = [
        {
            "code": f"svc{i}",
            "service": f"Service {i}",
            "unit": "hour",
            "cost": 10 + i,
            "currency": "GBP",
            "price_year": 2024,
        }
        for i in range(25)
    ]
    before = audit_count(db)
    with db.write(admin) as s:
        keys = audit_db.insert_rows(s, UnitCost, rows)
    assert len(keys) == 25 and keys == sorted(keys)
    assert audit_count(db) == before + 25
    with db.write(admin, reason="2025 prices") as s:
        changed = audit_db.update_rows(s, UnitCost, {keys[0]: {"cost": 99}, keys[1]: {"cost": 11}})
    assert changed == 1  # keys[1] already cost 11
    history = audit.history(db, admin, "unit_costs", str(keys[0]))
    assert [(r.action, r.field, r.old, r.new, r.reason) for r in history][-1] == (
        "update",
        "cost",
        '"10.00"',
        '"99.00"',
        "2025 prices",
    )
    assert audit.verify(db, admin).ok


def test_user_and_role_changes_are_audited(db: Database, actors: Actors) -> None:
    admin = actors["admin"]
    users.update_user(
        db,
        admin,
        "statistician",
        reason="now prepares closed reports",
        role="unblinded_statistician",
    )
    rows = audit.history(db, admin, "users", str(actors["statistician"].user_id))
    assert [(r.field, r.old, r.new, r.reason) for r in rows if r.action == "update"] == [
        ("role_code", '"statistician"', '"unblinded_statistician"', "now prepares closed reports")
    ]


# --------------------------------------------------------------------------- verification


@pytest.fixture
def busy_db(db: Database, actors: Actors) -> Database:
    coord = actors["coord_gla"]
    for ages in [(3,), (10, 40), (55,)]:
        fam = family_with_children(db, coord, "GLA", ages)
    families.correct_child(db, coord, fam.children[0].trial_id, {"sex": "male"}, reason="check")
    assert audit.verify(db, actors["admin"]).ok
    return db


def _seqs(url: str) -> list[int]:
    with raw(url) as conn:
        return [int(r[0]) for r in conn.execute(text("SELECT seq FROM audit_log ORDER BY seq"))]


def test_verify_detects_an_edited_audit_row(busy_db: Database, db_url: str, actors: Actors) -> None:
    target = _seqs(db_url)[4]
    with raw(db_url) as conn:
        drop_protection(conn, "audit_log")
        conn.execute(
            text("UPDATE audit_log SET user_name = 'mallory' WHERE seq = :s"), {"s": target}
        )
    result = audit.verify(busy_db, actors["admin"])
    assert not result.ok and result.chain.first_bad_seq == target
    assert "changed after it was written" in (result.chain.problem or "")


def test_verify_detects_a_deleted_audit_row(busy_db: Database, db_url: str, actors: Actors) -> None:
    target = _seqs(db_url)[3]
    with raw(db_url) as conn:
        drop_protection(conn, "audit_log")
        conn.execute(text("DELETE FROM audit_log WHERE seq = :s"), {"s": target})
    result = audit.verify(busy_db, actors["admin"])
    assert not result.ok and result.chain.first_bad_seq == target
    assert "missing" in (result.chain.problem or "")


def test_verify_detects_rows_cut_from_the_end(
    busy_db: Database, db_url: str, actors: Actors
) -> None:
    last = _seqs(db_url)[-1]
    with raw(db_url) as conn:
        drop_protection(conn, "audit_log")
        conn.execute(text("DELETE FROM audit_log WHERE seq >= :s"), {"s": last - 1})
    result = audit.verify(busy_db, actors["admin"])
    assert not result.ok and result.chain.first_bad_seq == last - 1
    assert "head records row" in (result.chain.problem or "")


def test_verify_detects_an_inserted_audit_row(
    busy_db: Database, db_url: str, actors: Actors
) -> None:
    seqs = _seqs(db_url)
    with raw(db_url) as conn:
        drop_protection(conn, "audit_log")
        conn.execute(
            text("UPDATE audit_log SET seq = seq + 1000000 WHERE seq > :s"), {"s": seqs[2]}
        )
        conn.execute(text("UPDATE audit_log SET seq = seq - 999999 WHERE seq > 1000000"))
        conn.execute(
            text(
                "INSERT INTO audit_log SELECT seq + 1, recorded_at, tx_id, user_id, user_name, role, action, "
                "table_name, row_key, field, old_value, 'forged', reason, noim_version, prev_hash, hash "
                "FROM audit_log WHERE seq = :s"
            ),
            {"s": seqs[2]},
        )
    result = audit.verify(busy_db, actors["admin"])
    assert not result.ok and result.chain.first_bad_seq == seqs[2] + 1


def test_verify_detects_trial_data_changed_behind_noims_back(
    busy_db: Database, db_url: str, actors: Actors
) -> None:
    with raw(db_url) as conn:
        child_id = conn.execute(text("SELECT min(id) FROM children")).scalar_one()
        conn.execute(text("UPDATE children SET sex = 'unknown' WHERE id = :i"), {"i": child_id})
        conn.execute(
            text(
                "INSERT INTO families (trial_id, site_id, site_seq, registered_at, registered_by_id) "
                "VALUES ('G-0099-X', 1, 99, CURRENT_TIMESTAMP, 1)"
            )
        )
    result = audit.verify(busy_db, actors["admin"])
    assert result.chain.ok and not result.ok
    assert result.data is not None
    problems = "\n".join(result.data.problems)
    assert f"children row {child_id} field sex differs from the audit trail" in problems
    assert "has no audit record: inserted behind noim's back" in problems
    assert audit.verify(busy_db, actors["admin"], check_data=False).ok


def test_only_audit_readers_may_verify(db: Database, actors: Actors) -> None:
    with pytest.raises(PermissionDenied, match="may not verify the audit trail"):
        audit.verify(db, actors["coord_gla"])
    assert audit.verify(db, actors["datamanager"]).ok


@pytest.mark.postgresql_only
def test_concurrent_writers_keep_one_unbroken_chain(db: Database, actors: Actors) -> None:
    coordinators = [actors["coord_gla"], actors["coord_cro"]]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            coord = coordinators[i % 2]
            site = "GLA" if i % 2 == 0 else "CRO"
            for _ in range(5):
                families.register_family(db, coord, site, None, True if site == "CRO" else None)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    result = audit.verify(db, actors["admin"])
    assert result.ok, (result.chain.problem, result.data and result.data.problems)
    fams = families.list_families(db, actors["admin"])
    assert len(fams) == 30 and len({f.trial_id for f in fams}) == 30


# --------------------------------------------------------------------------- reading


def test_history_masks_arms_for_blinded_roles_and_identities_for_others(
    db: Database, actors: Actors
) -> None:
    coord = actors["coord_gla"]
    fam = family_with_children(db, coord, "GLA", (12,))
    families.set_child_identity(
        db, coord, fam.children[0].trial_id, given_name="Ava", family_name="Stone"
    )
    with db.write(actors["admin"]) as s:
        family_id = s.scalar(select(Family.id).where(Family.trial_id == fam.trial_id))
        # allocations get their own service in the randomisation issue; only masking is tested here
        (allocation_id,) = audit_db.insert_rows(
            s,
            Allocation,
            [
                {
                    "family_id": family_id,
                    "arm_code": "NIM",
                    "method": "minimisation",
                    "stratum": "GLA",
                    "factors": {"site": "GLA"},
                    "sequence_number": 1,
                    "masked_code": "K7Q2",
                    "randomised_at": utcnow(),
                    "randomised_by_id": coord.user_id,
                }
            ],
        )
    unblinded = audit.history(db, actors["admin"], "allocations", str(allocation_id))
    blinded = audit.history(db, actors["datamanager"], "allocations", str(allocation_id))
    assert json.loads(unblinded[0].new or "")["arm_code"] == "NIM"
    assert json.loads(blinded[0].new or "")["arm_code"] == audit.MASKED
    assert "NIM" not in (blinded[0].new or "")
    with db.read() as s:
        identity_key = s.scalar(text("SELECT id FROM child_identities"))
    seen_by_dm = audit.history(db, actors["datamanager"], "child_identities", str(identity_key))
    seen_by_admin = audit.history(db, actors["admin"], "child_identities", str(identity_key))
    assert seen_by_dm[0].new == audit.IDENTIFIABLE
    # even for the administrator the trail holds identity values only as keyed digests
    # (issue 11 point 5: noim.db.identity_audit); the identity tables hold the values
    given = json.loads(seen_by_admin[0].new or "")["given_name"]
    assert given.startswith("hmac-sha256:") and "Ava" not in (seen_by_admin[0].new or "")
