"""`verify_data` streams (a merge join per table) and finds exactly what the in-memory
replay it replaced found, for every kind of tampering (issue 11, point 4)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from noim.db import audit_compare, audit_replay, bulk
from noim.db.audit import audited_tables, pk_columns, row_key, update_rows
from noim.db.audit_grouped import GROUPED_FIELD, expand_audit_row, insert_columns
from noim.db.audit_verify import verify_chain, verify_data
from noim.db.models import AuditLog, ItemResponse
from noim.db.session import Database
from noim.services import families
from tests.conftest import Actors
from tests.dbutil import drop_protection, raw
from tests.factories import family_with_children
from tests.test_audit_grouped import _import


def reference_problems(conn: Connection) -> Counter[str]:
    """The in-memory replay ``verify_data`` used before it streamed (noim 0.x, issue 11):
    every replayed row of every table in one dict, then each table compared with it."""
    problems: Counter[str] = Counter()
    state: dict[str, dict[str, dict[str, str]]] = defaultdict(dict)
    dump = audit_compare.dump
    for row in conn.execute(select(AuditLog.__table__).order_by(AuditLog.seq)).mappings():
        table, key = row["table_name"], row["row_key"]
        try:
            if row["action"] == "insert" and row["field"] == GROUPED_FIELD:
                for name, held, values in expand_audit_row(table, key, row["new_value"]):
                    state[name][held] = {k: dump(v) for k, v in values.items()}
            elif row["action"] == "insert":
                values = json.loads(row["new_value"])
                state[table][key] = {k: dump(v) for k, v in values.items()}
            else:
                state[table].setdefault(key, {})[row["field"]] = dump(json.loads(row["new_value"]))
        except (TypeError, ValueError, AttributeError, KeyError):
            problems[audit_compare.not_canonical(row["seq"])] += 1
    for table in audited_tables():
        expected = state.get(table.name, {})
        pks = pk_columns(table)
        seen: set[str] = set()
        for row in conn.execute(select(table)).mappings():
            key = row_key([row[c.name] for c in pks])
            seen.add(key)
            audited = expected.get(key)
            if audited is None:
                problems[
                    f"{table.name} row {key} has no audit record: inserted behind noim's back"
                ] += 1
                continue
            for c in table.columns:
                if bulk.column_encoder(c)(row[c.name]) != audited.get(c.name):
                    problems[
                        f"{table.name} row {key} field {c.name} differs from the audit trail: "
                        "changed behind noim's back"
                    ] += 1
        for key in set(expected) - seen:
            problems[
                f"{table.name} row {key} is in the audit trail but not in the table: deleted "
                "behind noim's back"
            ] += 1
    return problems


def streamed_problems(db: Database) -> Counter[str]:
    with db.snapshot() as conn:
        report = verify_data(conn, limit=10_000)
    assert report.total_problems == len(report.problems)
    return Counter(report.problems)


def check_same(db: Database) -> Counter[str]:
    with db.snapshot() as conn:
        expected = reference_problems(conn)
    got = streamed_problems(db)
    assert got == expected
    return got


@pytest.fixture
def trial(db: Database, actors: Actors, tmp_path: Path) -> Database:
    """Families, children corrected and voided, and imported assessments (grouped rows)."""
    coord = actors["coord_gla"]
    for ages in [(3,), (10, 40), (55,), (7, 8, 9)]:
        fam = family_with_children(db, coord, "GLA", ages)
    families.correct_child(db, coord, fam.children[0].trial_id, {"sex": "male"}, reason="check")
    families.void_family(db, coord, fam.trial_id, reason="registered twice")
    _import(db, actors, tmp_path)
    return db


def _ids(url: str, table: str) -> list[int]:
    with raw(url) as conn:
        return [int(r[0]) for r in conn.execute(text(f"SELECT id FROM {table} ORDER BY id"))]


def test_an_intact_trial_agrees_with_the_reference(trial: Database) -> None:
    assert check_same(trial) == Counter()
    with trial.snapshot() as conn:
        report = verify_data(conn)
        counted = sum(
            conn.execute(select(text("count(*)")).select_from(t)).scalar_one()
            for t in audited_tables()
        )
    assert report.ok and report.rows == counted and report.tables == len(audited_tables())


def test_every_kind_of_tampering_is_found_as_the_reference_finds_it(
    trial: Database, db_url: str
) -> None:
    children, items = _ids(db_url, "children"), _ids(db_url, "item_responses")
    scores, visits = _ids(db_url, "derived_scores"), _ids(db_url, "families")
    with raw(db_url) as conn:
        for table in ("children", "item_responses", "derived_scores", "audit_log", "roles"):
            drop_protection(conn, table)
        # trial data changed, added (a positive and a negative key) and removed
        conn.execute(text("UPDATE children SET sex = 'unknown' WHERE id = :i"), {"i": children[1]})
        conn.execute(text("UPDATE item_responses SET value = 7 WHERE id = :i"), {"i": items[3]})
        conn.execute(text("UPDATE derived_scores SET score = -1 WHERE id = :i"), {"i": scores[0]})
        conn.execute(text("UPDATE roles SET label = 'Boss' WHERE code = 'administrator'"))
        for key, item in ((items[-1] + 50, 98), (-5, 99)):
            conn.execute(
                text(
                    "INSERT INTO item_responses (id, assessment_id, item, value, missing_reason) "
                    "SELECT :k, assessment_id, :n, 1, NULL FROM item_responses WHERE id = :i"
                ),
                {"k": key, "n": item, "i": items[0]},
            )
        conn.execute(text("DELETE FROM item_responses WHERE id = :i"), {"i": items[7]})
        conn.execute(text("DELETE FROM derived_scores WHERE id = :i"), {"i": scores[-1]})
        # audit rows noim could not have written: a plain insert, an update, a grouped row
        first_child = conn.execute(
            text(
                "SELECT min(seq) FROM audit_log WHERE table_name = 'children' AND action = 'insert'"
            )
        ).scalar_one()
        conn.execute(
            text("UPDATE audit_log SET new_value = '{not json' WHERE seq = :s"),
            {"s": first_child},
        )
        conn.execute(
            text(
                "UPDATE audit_log SET new_value = NULL WHERE seq = (SELECT min(seq) FROM "
                "audit_log WHERE action = 'update')"
            )
        )
        conn.execute(
            text(
                "UPDATE audit_log SET new_value = '{\"row\": 1}' WHERE seq = (SELECT max(seq) "
                "FROM audit_log WHERE field = :g)"
            ),
            {"g": GROUPED_FIELD},
        )
        # row keys noim never writes, and a stray row of a table noim does not have
        conn.execute(
            text(
                "UPDATE audit_log SET row_key = '0' || row_key WHERE seq = (SELECT max(seq) "
                "FROM audit_log WHERE table_name = 'families' AND action = 'insert')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO audit_log SELECT seq + 100000, recorded_at, tx_id, user_id, "
                "user_name, role, action, 'no_such_table', 'x', field, old_value, 'bad', "
                "reason, noim_version, prev_hash, hash FROM audit_log WHERE seq = 1"
            )
        )
    problems = check_same(trial)
    assert len(problems) >= 12, problems
    text_of = "\n".join(problems)
    assert f"item_responses row {items[3]} field value differs" in text_of
    assert "item_responses row -5 has no audit record" in text_of
    assert f"item_responses row {items[7]} is in the audit trail but not in the table" in text_of
    assert "roles row administrator field label differs" in text_of
    assert visits  # families exist; one of them is now audited under a key noim never writes


def test_small_batches_give_the_same_answer(
    trial: Database, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = _ids(db_url, "item_responses")
    with raw(db_url) as conn:
        conn.execute(text("UPDATE item_responses SET value = 7 WHERE id = :i"), {"i": items[30]})
    expected = check_same(trial)
    monkeypatch.setattr(audit_replay, "BATCH", 3)
    monkeypatch.setattr(audit_replay, "OPEN_BATCH", 1)
    assert streamed_problems(trial) == expected == check_same(trial)
    assert len(expected) == 1


def test_grouped_rows_out_of_key_order_and_later_updates(
    trial: Database, db_url: str, actors: Actors
) -> None:
    """Grouped audit rows whose keys do not follow their seq (two writers reserving ids),
    whose keys interleave, and rows of them updated later by ordinary audit rows."""
    admin = actors["admin"]
    top = max(_ids(db_url, "item_responses"))
    with raw(db_url) as conn:
        aid = conn.execute(text("SELECT min(id) FROM assessments")).scalar_one()

    def block(ids: list[int], first_item: int) -> dict[str, Any]:
        return {
            "id": ids,
            "assessment_id": [aid] * len(ids),
            "item": list(range(first_item, first_item + len(ids))),
            "value": [1.0] * len(ids),
            "missing_reason": [None] * len(ids),
        }

    later = [top + 200 + i for i in range(5)]  # written first, higher keys
    earlier = [top + 100 + 2 * i for i in range(5)]  # written second, lower keys, not consecutive
    between = [top + 101 + 2 * i for i in range(5)]  # interleaves with the one before
    with trial.write(admin, reason="test") as s:
        insert_columns(s, ItemResponse, block(later, 60), group_by="assessment_id")
    with trial.write(admin, reason="test") as s:
        insert_columns(s, ItemResponse, block(earlier[::-1], 70), group_by="assessment_id")
    with trial.write(admin, reason="test") as s:
        insert_columns(s, ItemResponse, block(between, 80), group_by="item")
    with trial.write(admin, reason="corrected") as s:
        update_rows(s, ItemResponse, {earlier[2]: {"value": 2.0}, later[0]: {"value": 0.0}})
    assert check_same(trial) == Counter()
    with raw(db_url) as conn:
        conn.execute(text("UPDATE item_responses SET value = 1 WHERE id = :i"), {"i": earlier[2]})
        conn.execute(text("UPDATE item_responses SET item = 90 WHERE id = :i"), {"i": between[4]})
    problems = check_same(trial)
    assert set(problems) == {
        f"item_responses row {earlier[2]} field value differs from the audit trail: "
        "changed behind noim's back",
        f"item_responses row {between[4]} field item differs from the audit trail: "
        "changed behind noim's back",
    }


@pytest.mark.postgresql_only
def test_a_negative_zero_is_a_change(trial: Database, db_url: str) -> None:
    """The value-by-value route compares types and the sign of zero, as the texts would."""
    with raw(db_url) as conn:
        item = conn.execute(text("SELECT min(id) FROM item_responses WHERE value = 0")).scalar()
        conn.execute(text("UPDATE item_responses SET value = '-0' WHERE id = :i"), {"i": item})
    assert check_same(trial) == Counter(
        {
            f"item_responses row {item} field value differs from the audit trail: "
            "changed behind noim's back": 1
        }
    )


def test_verify_chain_and_data_in_one_snapshot_see_the_same_rows(trial: Database) -> None:
    with trial.snapshot() as conn:
        chain = verify_chain(conn)
        data = verify_data(conn)
    assert chain.ok and data.ok
