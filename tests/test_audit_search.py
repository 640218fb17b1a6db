"""Searching the audit trail: filters, paging, permissions and blinding."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from noim.db.base import utcnow
from noim.db.session import Database
from noim.domain.exceptions import PermissionDenied, ValidationError
from noim.services import audit, economics, families, queries
from noim.services.audit import IDENTIFIABLE, MASKED
from noim.services.audit_search import search, table_names
from tests.conftest import Actors
from tests.factories import family_with_children, rule_ids, small_trial


def test_filters_by_table_record_user_and_dates(db: Database, actors: Actors) -> None:
    gla = family_with_children(db, actors["coord_gla"], "GLA", (10, 20))
    cro = family_with_children(db, actors["coord_cro"], "CRO", (10,))
    child = gla.children[1]
    admin = actors["admin"]
    rows = search(db, admin, table="children", key=child.trial_id).rows
    assert rows and {r.table for r in rows} == {"children"} and len({r.key for r in rows}) == 1
    # the same rows as the record's own history shows, newest first
    own = [r for r in audit.history(db, admin, "children", child.trial_id) if r.table == "children"]
    assert [r.seq for r in rows] == [r.seq for r in reversed(own)]
    by_cro = search(db, admin, user="coord_cro", table="families").rows
    assert len(by_cro) == 1 and by_cro[0].user == "coord_cro"
    assert json.loads(by_cro[0].new or "{}")["trial_id"] == cro.trial_id
    today = utcnow().date()
    everything = search(db, admin, per_page=200).total
    assert search(db, admin, since=today, until=today, per_page=200).total == everything
    assert search(db, admin, until=today - timedelta(days=1)).total == 0
    assert search(db, admin, since=today + timedelta(days=1)).total == 0


def test_pages_newest_first(db: Database, actors: Actors) -> None:
    family_with_children(db, actors["coord_gla"], "GLA", (10, 20, 30))
    admin = actors["admin"]
    total = search(db, admin).total
    first = search(db, admin, per_page=3)
    second = search(db, admin, page=2, per_page=3)
    seqs = [r.seq for r in (*first.rows, *second.rows)]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == 6
    assert first.pages == -(-total // 3) and first.has_next and not first.has_previous


@pytest.mark.parametrize(
    ("kwargs", "rule", "field"),
    [
        ({"table": "nonsense"}, "AUD-001", "table"),
        ({"table": "audit_log"}, "AUD-001", "table"),
        ({"key": "3"}, "AUD-002", "key"),
        ({"table": "children", "key": "G-9999-01-X"}, "AUD-002", "key"),
        ({"since": date(2026, 2, 1), "until": date(2026, 1, 1)}, "AUD-003", "until"),
        ({"page": 0}, "AUD-004", "page"),
        ({"per_page": 0}, "AUD-004", "per_page"),
    ],
)
def test_bad_filters_are_refused(
    db: Database, actors: Actors, kwargs: dict[str, Any], rule: str, field: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        search(db, actors["datamanager"], **kwargs)
    assert rule_ids(exc) == {rule}
    assert {p.field for p in exc.value.problems} == {field}


@pytest.mark.parametrize(
    "user", ["coord_gla", "research_gla", "statistician", "unblinded_stat", "dmc_chair"]
)
def test_only_audit_readers_search(db: Database, actors: Actors, user: str) -> None:
    with pytest.raises(PermissionDenied, match="read_audit"):
        search(db, actors[user])


def test_table_names_are_the_audited_tables() -> None:
    names = table_names()
    assert "children" in names and "allocations" in names and "audit_log" not in names


def test_blinded_reader_gets_no_arm_and_no_identity(db: Database, actors: Actors) -> None:
    trial = small_trial(db, actors, n_families=4)
    family = next(iter(trial.children))
    child = trial.children[family][0]
    coordinator = actors["coord_gla" if child.startswith("G") else "coord_cro"]
    families.set_child_identity(db, coordinator, child, given_name="Morag")
    dm = search(db, actors["datamanager"], table="allocations", per_page=200).rows
    admin = search(db, actors["admin"], table="allocations", per_page=200).rows
    assert len(dm) == len(admin) > 0
    inserted = [json.loads(r.new or "{}") for r in dm if r.action == "insert"]
    assert inserted and all(row["arm_code"] == MASKED for row in inserted)
    seen = [json.loads(r.new or "{}") for r in admin if r.action == "insert"]
    assert {row["arm_code"] for row in seen} <= set(trial.arms.values())
    names = search(db, actors["datamanager"], table="child_identities").rows
    assert names and all(r.new in (None, IDENTIFIABLE) for r in names)
    shown = search(db, actors["admin"], table="child_identities").rows
    assert len(shown) == len(names) and any(r.new != IDENTIFIABLE for r in shown)


def test_arm_revealing_service_use_is_left_out_for_blinded_readers(
    db: Database, actors: Actors
) -> None:
    fam = family_with_children(db, actors["coord_gla"], "GLA", (10,))
    child = fam.children[0].trial_id
    dm = actors["datamanager"]
    economics.add_unit_cost(db, dm, "sw_hour", "Social worker", "hour", Decimal("45"), 2023)
    economics.add_unit_cost(
        db,
        actors["admin"],
        "nim_session",
        "Infant mental health team",
        "session",
        Decimal(90),
        2023,
    )
    seen = economics.add_service_use(
        db, actors["research_gla"], child, "sw_hour", date(2024, 4, 1), date(2024, 4, 2), Decimal(1)
    )
    hidden = economics.add_service_use(
        db,
        actors["coord_gla"],
        child,
        "nim_session",
        date(2024, 4, 1),
        date(2024, 4, 2),
        Decimal(1),
    )
    q = queries.raise_query(db, actors["admin"], "service_use", str(hidden.id), "check it")
    queries.respond(db, actors["coord_gla"], q.id, "done")
    admin_rows = search(db, actors["admin"], per_page=200).rows
    assert ("service_use", str(hidden.id)) in {(r.table, r.key) for r in admin_rows}
    assert ("data_queries", str(q.id)) in {(r.table, r.key) for r in admin_rows}
    rows = search(db, dm, per_page=200).rows
    keys = {(r.table, r.key) for r in rows}
    assert ("service_use", str(seen.id)) in keys
    assert ("service_use", str(hidden.id)) not in keys
    assert ("data_queries", str(q.id)) not in keys
    assert not [r for r in rows if r.table == "data_query_messages"]
    assert search(db, dm, table="service_use", key=str(hidden.id)).total == 0
    text = json.dumps([r.__dict__ for r in rows], default=str)
    assert "nim_session" not in text and "Infant mental health team" not in text
