"""One audit row per imported assessment (``noim.db.audit_grouped.insert_records``): its
row, its item responses and its derived scores; verify proves each of them."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from noim.db import audit_grouped, bulk
from noim.db.audit_grouped import GROUPED_FIELD, expand_audit_row, insert_records
from noim.db.audit_verify import verify_chain, verify_data
from noim.db.models import Assessment, AuditLog, DerivedScore, ItemResponse
from noim.db.session import Database
from noim.domain.durations import add_months
from noim.services import audit
from noim.services.imports import run_import
from tests.conftest import Actors
from tests.dbutil import drop_protection, raw
from tests.test_import_assessments import HEADER, TODAY, long_rows, randomised_children, sdq


def _import(db: Database, actors: Actors, tmp_path: Path) -> None:
    a, b = randomised_children(db, actors)
    first = sdq(1)
    first[3] = "dont_know"
    baseline = add_months(TODAY, -15) + timedelta(days=40)
    f = tmp_path / "a.csv"
    f.write_text(
        HEADER
        + long_rows(a, "15m", TODAY, first)
        + long_rows(b, "15m", TODAY, sdq(2), respondent="teacher")
        + long_rows(a, "baseline", baseline, sdq(3)),
        encoding="utf-8",
    )
    assert run_import(db, actors["coord_gla"], "assessments", f).new_records == 3


def _stored(db: Database) -> dict[tuple[str, str], dict[str, str]]:
    """Every stored assessment, item response and score, as canonical JSON per column."""
    out = {}
    with db.read() as s:
        for model in (Assessment, ItemResponse, DerivedScore):
            table = model.__table__
            enc = bulk.encoder_for(table)  # type: ignore[arg-type]
            for row in s.execute(select(table)).mappings():
                out[(table.name, str(row["id"]))] = {  # type: ignore[attr-defined]
                    k: enc.value(k, v) for k, v in row.items()
                }
    return out


def test_one_canonical_audit_row_per_assessment_reconstructs_every_value(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    _import(db, actors, tmp_path)
    with db.read() as s:
        rows = s.execute(
            select(AuditLog.table_name, AuditLog.row_key, AuditLog.field, AuditLog.new_value)
            .where(AuditLog.table_name.in_(["assessments", "item_responses", "derived_scores"]))
            .order_by(AuditLog.seq)
        ).all()
    assert [(r[0], r[2]) for r in rows] == [("assessments", GROUPED_FIELD)] * 3
    replayed: dict[tuple[str, str], dict[str, str]] = {}
    for table, key, _field, new in rows:
        assert new == bulk.dump(json.loads(new))  # canonical JSON, as every audit value
        for name, held, values in expand_audit_row(table, key, new):
            replayed[(name, held)] = {k: bulk.dump(v) for k, v in values.items()}
    assert replayed == _stored(db)
    assert sum(t == "item_responses" for t, _k in replayed) == 75
    assert sum(t == "derived_scores" for t, _k in replayed) == 24


def test_row_texts_without_combination_codes_are_the_same(
    db: Database, actors: Actors, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _import(db, actors, tmp_path)
    table = ItemResponse.__table__
    with db.read() as s:
        rows = s.execute(select(table).order_by(table.c.id)).mappings().all()  # type: ignore[attr-defined]
    columns = {c.name: [r[c.name] for r in rows] for c in table.columns}  # type: ignore[attr-defined]
    columns["id"] = [i * 2 for i in columns["id"]]  # not consecutive: a column of its own
    fast = audit_grouped._blocks(table, columns, "assessment_id")  # type: ignore[arg-type]
    monkeypatch.setattr(audit_grouped, "_MAX_COMBOS", 1.0)  # rows joined one by one
    slow = audit_grouped._blocks(table, columns, "assessment_id")  # type: ignore[arg-type]
    assert fast == slow and len(fast[1]) == 3
    data = json.loads(fast[1][0])
    assert data["columns"] == ["id", "item", "missing_reason", "value"]
    assert [r[0] for r in data["rows"]] == columns["id"][:25]


def test_verify_finds_a_changed_added_or_removed_response_or_score(
    db: Database, actors: Actors, tmp_path: Path, db_url: str
) -> None:
    _import(db, actors, tmp_path)
    with db.engine.connect() as conn:
        assert verify_chain(conn).ok and verify_data(conn).ok
    with db.read() as s:
        items = s.scalars(select(ItemResponse.id).order_by(ItemResponse.id)).all()
        scores = s.scalars(select(DerivedScore.id).order_by(DerivedScore.id)).all()
        aid = s.scalar(select(Assessment.id).order_by(Assessment.id))
    with raw(db_url) as conn:
        conn.execute(
            text("UPDATE item_responses SET value = 2 WHERE id = :i AND value <> 2"),
            {"i": items[0]},
        )
        conn.execute(
            text("UPDATE item_responses SET value = 0 WHERE id = :i AND value = 2"), {"i": items[0]}
        )
        conn.execute(text("UPDATE derived_scores SET score = 99 WHERE id = :i"), {"i": scores[1]})
        conn.execute(
            text(
                "INSERT INTO item_responses (id, assessment_id, item, value, missing_reason) "
                "VALUES (:i, :a, 26, 1, NULL)"
            ),
            {"i": items[-1] + 10, "a": aid},
        )
        drop_protection(conn, "item_responses")
        drop_protection(conn, "derived_scores")
        conn.execute(text("DELETE FROM item_responses WHERE id = :i"), {"i": items[5]})
        conn.execute(text("DELETE FROM derived_scores WHERE id = :i"), {"i": scores[-1]})
        conn.execute(text("UPDATE assessments SET form = '4-10' WHERE id = :i"), {"i": aid})
    with db.engine.connect() as conn:
        assert verify_chain(conn).ok
        report = verify_data(conn)
    problems = "\n".join(report.problems)
    assert f"item_responses row {items[0]} field value differs" in problems
    assert f"derived_scores row {scores[1]} field score differs" in problems
    assert f"item_responses row {items[-1] + 10} has no audit record" in problems
    assert f"item_responses row {items[5]} is in the audit trail but not in the table" in problems
    assert f"derived_scores row {scores[-1]} is in the audit trail but not in the table" in problems
    assert f"assessments row {aid} field form differs" in problems
    assert report.total_problems == 6


def test_insert_records_leaves_out_empty_parts_and_refuses_orphans(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    _import(db, actors, tmp_path)
    items = {
        "id": [1],
        "assessment_id": [99],
        "item": [1],
        "value": [1.0],
        "missing_reason": [None],
    }
    before = _stored(db)
    empty = {c.name: [] for c in Assessment.__table__.columns}
    with (
        pytest.raises(ValueError, match="not a record inserted"),
        db.write(actors["coord_gla"], reason="test") as s,
    ):
        insert_records(s, Assessment, empty, {ItemResponse: items}, link="assessment_id")
    assert _stored(db) == before
    with db.write(actors["coord_gla"], reason="test") as s:
        row = dict(s.execute(select(Assessment.__table__).limit(1)).mappings().one())
        conn = s.connection()
        (aid,) = bulk.reserve_ids(conn, Assessment.__table__, 1)  # type: ignore[arg-type]
        ids = bulk.reserve_ids(conn, ItemResponse.__table__, 2)  # type: ignore[arg-type]
        row.update(id=aid, respondent_type="birth_parent", assessed_on=TODAY - timedelta(days=1))
        insert_records(
            s,
            Assessment,
            {k: [v] for k, v in row.items()},
            {
                ItemResponse: {
                    "id": ids,
                    "assessment_id": [aid, aid],
                    "item": [1, 2],
                    "value": [1.0, None],
                    "missing_reason": [None, "refused"],
                },
                DerivedScore: {c.name: [] for c in DerivedScore.__table__.columns},
            },
            link="assessment_id",
        )
    (history,) = audit.history(db, actors["admin"], "item_responses", str(ids[1]))
    held = json.loads(history.new or "")
    assert sorted(held["tables"]) == ["item_responses"]
    assert held["tables"]["item_responses"]["rows"] == [[1, None, 1.0], [2, "refused", None]]
    with db.engine.connect() as conn:
        assert verify_data(conn).ok


def test_history_of_a_score_and_of_an_assessment_is_its_one_row(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    _import(db, actors, tmp_path)
    with db.read() as s:
        aid, sid = s.execute(
            select(DerivedScore.assessment_id, DerivedScore.id).order_by(DerivedScore.id.desc())
        ).first() or (0, 0)
    (row,) = audit.history(db, actors["admin"], "derived_scores", str(sid))
    (same,) = audit.history(db, actors["admin"], "assessments", str(aid))
    assert row == same and (row.table, row.key, row.field) == (
        "assessments",
        str(aid),
        GROUPED_FIELD,
    )
