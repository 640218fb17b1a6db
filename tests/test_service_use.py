"""Unit costs (reference data) and service use costed as quantity × unit cost."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest

from noim.db.base import utcnow
from noim.db.models import ServiceUse, UnitCost
from noim.db.session import Database
from noim.domain.exceptions import PermissionDenied, ValidationError
from noim.services import audit, economics, voiding
from noim.services.families import FamilyView
from tests.conftest import Actors
from tests.factories import count_rows, family_with_children, rule_ids
from tests.test_cli import run
from tests.test_people import SCOPE


@pytest.fixture
def gla(db: Database, actors: Actors) -> FamilyView:
    return family_with_children(db, actors["coord_gla"], "GLA", (10,))


@pytest.fixture
def costs(db: Database, actors: Actors) -> None:
    dm = actors["datamanager"]
    economics.add_unit_cost(db, dm, "sw_hour", "Social worker", "hour", Decimal("45.50"), 2023)
    economics.add_unit_cost(
        db, dm, "GP_visit", "GP consultation", "visit", Decimal("39.23"), 2023, source="PSSRU 2023"
    )


def test_unit_costs_are_reference_data(db: Database, actors: Actors, costs: None) -> None:
    listed = economics.list_unit_costs(db, actors["research_cro"])
    assert [(u.code, u.cost, u.currency) for u in listed] == [
        ("gp_visit", Decimal("39.23"), "GBP"),
        ("sw_hour", Decimal("45.50"), "GBP"),
    ]
    history = audit.history(db, actors["admin"], "unit_costs", "1")
    assert history[0].action == "insert" and history[0].user == "datamanager"
    assert json.loads(history[0].new or "")["cost"] in ("45.50", "45.5", 45.5)
    for name in ("coord_gla", "research_gla", "statistician"):
        with pytest.raises(PermissionDenied, match="lacks 'manage_reference_data'"):
            economics.add_unit_cost(db, actors[name], "x", "X", "hour", Decimal(1), 2023)
    before = count_rows(db, UnitCost)
    with pytest.raises(ValidationError) as err:
        economics.add_unit_cost(
            db, actors["admin"], "SW_HOUR", " ", "", Decimal("-1.005"), 1980, currency="pounds"
        )
    assert rule_ids(err) == {"SRV-002", "SRV-003", "SRV-004", "SRV-005", "SRV-006"}
    by_rule = {p.rule: p for p in err.value.problems}
    assert (by_rule["SRV-004"].field, by_rule["SRV-004"].value) == ("cost", "-1.005")
    assert by_rule["SRV-002"].record == "unit cost 'sw_hour'"
    with pytest.raises(ValidationError) as err:
        economics.add_unit_cost(db, actors["admin"], "bad code!", "X", "hour", Decimal(1), 2023)
    assert rule_ids(err) == {"SRV-001"}
    assert count_rows(db, UnitCost) == before


def test_service_use_is_costed(db: Database, actors: Actors, gla: FamilyView, costs: None) -> None:
    researcher = actors["research_gla"]
    child = gla.children[0].trial_id
    first = economics.add_service_use(
        db, researcher, child, "sw_hour", date(2024, 3, 1), date(2024, 5, 31), Decimal("3.5"),
        "case file",
    )  # fmt: skip
    assert (first.cost, first.unit_price, first.quantity) == (
        Decimal("159.25"),
        Decimal("45.50"),
        Decimal("3.50"),
    )
    second = economics.add_service_use(
        db, actors["coord_gla"], child, "gp_visit", date(2024, 4, 1), date(2024, 4, 1), Decimal(2)
    )
    report = economics.list_service_use(db, actors["statistician"], child)
    assert [r.id for r in report.rows] == [first.id, second.id]
    assert report.totals == {"GBP": Decimal("237.71")}
    voiding.void_record(db, researcher, "service_use", second.id, "entered for the wrong child")
    report = economics.list_service_use(db, researcher, child)
    assert report.totals == {"GBP": Decimal("159.25")} and report.rows[1].voided
    history = audit.history(db, actors["admin"], "service_use", str(second.id))
    assert [r.action for r in history] == ["insert", "void", "void"]


def test_bad_service_use_reports_every_problem_and_writes_nothing(
    db: Database, actors: Actors, gla: FamilyView, costs: None
) -> None:
    coord = actors["coord_gla"]
    child = gla.children[0]
    future = utcnow().date() + timedelta(days=1)
    before = count_rows(db, ServiceUse)
    with pytest.raises(ValidationError) as err:
        economics.add_service_use(
            db, coord, child.trial_id, "taxi", future, child.date_of_birth, Decimal("-2"), "s" * 70
        )
    assert rule_ids(err) == {"SRV-007", "SRV-008", "SRV-009", "SRV-013"}
    by_rule = {p.rule: p for p in err.value.problems}
    assert by_rule["SRV-007"].value == "taxi" and "sw_hour" in by_rule["SRV-007"].expected
    assert by_rule["SRV-009"].field == "period_end"
    with pytest.raises(ValidationError) as err:
        economics.add_service_use(
            db, coord, child.trial_id, "sw_hour", child.date_of_birth - timedelta(1), future,
            Decimal("1.234"),
        )  # fmt: skip
    assert rule_ids(err) == {"SRV-008", "SRV-010", "SRV-011"}
    assert {p.record for p in err.value.problems} == {f"service use of child {child.trial_id}"}
    assert count_rows(db, ServiceUse) == before


def test_service_use_is_site_scoped(
    db: Database, actors: Actors, gla: FamilyView, costs: None
) -> None:
    child = gla.children[0].trial_id
    use = economics.add_service_use(
        db, actors["coord_gla"], child, "sw_hour", date(2024, 3, 1), date(2024, 3, 2), Decimal(1)
    )
    for name in ("coord_cro", "research_cro"):
        actor = actors[name]
        with pytest.raises(PermissionDenied, match=r"may not .* at site 'GLA'"):
            economics.add_service_use(
                db, actor, child, "sw_hour", date(2024, 3, 1), date(2024, 3, 2), Decimal(1)
            )
        with pytest.raises(PermissionDenied, match=r"may not .* at site 'GLA'"):
            economics.list_service_use(db, actor, child)
        with pytest.raises(PermissionDenied, match=r"may not .* at site 'GLA'"):
            voiding.void_record(db, actor, "service_use", use.id, "x")
    with pytest.raises(PermissionDenied, match=SCOPE):
        economics.list_service_use(db, actors["coord_cro"], child)
    with pytest.raises(PermissionDenied, match="lacks 'write_assessments'"):
        economics.add_service_use(
            db,
            actors["datamanager"],
            child,
            "sw_hour",
            date(2024, 3, 1),
            date(2024, 3, 2),
            Decimal(1),
        )
    assert count_rows(db, ServiceUse) == 1


def test_economics_commands(db_url: str) -> None:
    from tests.test_cli_randomisation import _family_with_child

    _fam, child = _family_with_child(db_url)
    dm = ("--database", db_url, "--user", "datamanager")
    added = run(*dm, "unit-cost", "add", "sw_hour", "--service", "Social worker", "--unit", "hour",
                "--cost", "45.50", "--price-year", "2023", "--json")  # fmt: skip
    assert added.exit_code == 0, added.stderr
    assert json.loads(added.output)["cost"] == "45.50"
    bad = run(*dm, "unit-cost", "add", "x", "--service", "X", "--unit", "h", "--cost", "ten",
              "--price-year", "2023")  # fmt: skip
    assert bad.exit_code == 2 and "'ten' is not a number" in bad.output
    assert json.loads(run(*dm, "unit-cost", "list", "--json").output)[0]["code"] == "sw_hour"
    assert "Unit costs (1)" in run(*dm, "unit-cost", "list").output
    coord = ("--database", db_url, "--user", "research_gla")
    use = run(*coord, "service-use", "add", child, "--unit-cost", "sw_hour", "--from", "2024-03-01",
              "--to", "2024-03-31", "--quantity", "2.5", "--json")  # fmt: skip
    assert use.exit_code == 0, use.stderr
    assert json.loads(use.output)["cost"] == "113.75"
    report = json.loads(run(*coord, "service-use", "list", child, "--json").output)
    assert report["totals"] == {"GBP": "113.75"} and len(report["rows"]) == 1
    assert "Total: 113.75 GBP" in run(*coord, "service-use", "list", child).output
    refused = run(*coord, "service-use", "add", child, "--unit-cost", "sw_hour", "--from",
                  "2024-03-01", "--to", "2024-02-01", "--quantity", "-1")  # fmt: skip
    assert refused.exit_code == 1 and "SRV-008" in refused.stderr and "SRV-009" in refused.stderr
    cro = run("--database", db_url, "--user", "coord_cro", "service-use", "list", child)
    assert cro.exit_code == 1 and "may not" in cro.stderr
