"""Import kind ``service-use``: add_service_use's rules, atomic, idempotent, site scope."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from noim.db.models import ServiceUse
from noim.db.session import Database
from noim.domain.exceptions import ImportRejected, PermissionDenied
from noim.services import economics
from noim.services.imports import run_import
from tests.conftest import Actors
from tests.factories import family_with_children

HEADER = "child_id,unit_cost,period_start,period_end,quantity,source\n"


def _count(db: Database) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(ServiceUse)) or 0)


def _costs(db: Database, actors: Actors) -> None:
    manager = actors["datamanager"]
    economics.add_unit_cost(db, manager, "sw_hour", "Social worker", "hour", Decimal("45.50"), 2023)
    economics.add_unit_cost(db, manager, "gp_visit", "GP visit", "visit", Decimal("39"), 2023)


def test_service_use_import(db: Database, actors: Actors, tmp_path: Path) -> None:
    _costs(db, actors)
    researcher = actors["research_gla"]  # service use is collected with the assessments
    a, b = [
        c.trial_id for c in family_with_children(db, actors["coord_gla"], "GLA", (10, 30)).children
    ]
    f = tmp_path / "service-use.csv"
    f.write_text(
        HEADER
        + f"{a},sw_hour,2024-04-01,2024-06-30,12.5,carer interview\n"
        + f"{a},GP_VISIT,2024-04-01,2024-06-30,2,\n"
        + f"{b},sw_hour,2024-04-01,2024-06-30,3,\n",
        encoding="utf-8",
    )
    report = run_import(db, researcher, "service-use", f)
    assert (report.new_records, report.unit) == (3, "service use")
    costed = economics.list_service_use(db, researcher, a)
    assert costed.totals == {"GBP": Decimal("12.5") * Decimal("45.50") + 2 * Decimal("39")}
    assert {r.source for r in costed.rows} == {"carer interview", None}
    again = run_import(db, researcher, "service-use", f)
    assert (again.new_records, again.unchanged_records) == (0, 3)
    assert _count(db) == 3


def test_service_use_bad_rows_are_all_reported_and_nothing_written(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    _costs(db, actors)
    coord = actors["coord_gla"]
    (a,) = [c.trial_id for c in family_with_children(db, coord, "GLA", (10,)).children]
    (cro,) = [
        c.trial_id for c in family_with_children(db, actors["coord_cro"], "CRO", (10,)).children
    ]
    economics.add_service_use(
        db, coord, a, "sw_hour", date(2024, 1, 1), date(2024, 3, 31), Decimal(4)
    )
    future = date.today() + timedelta(days=30)
    f = tmp_path / "bad.csv"
    f.write_text(
        HEADER
        + f"{a},taxi,2024-04-01,2024-06-30,1,\n"  # row 2: unknown unit cost
        + f"{a},sw_hour,2024-04-01,2024-06-30,-1,\n"  # row 3: negative quantity
        + f"{a},sw_hour,2024-06-30,2024-04-01,1,\n"  # row 4: ends before it starts
        + f"{a},sw_hour,2020-01-01,2020-02-01,1,\n"  # row 5: before the date of birth
        + f"{a},sw_hour,2024-07-01,{future},1,\n"  # row 6: ends in the future
        + f"{a},sw_hour,2024-04-01,2024-06-30,lots,\n"  # row 7: not a number
        + f"{cro},sw_hour,2024-04-01,2024-06-30,1,\n"  # row 8: a Croydon child
        + f"{a},sw_hour,2024-01-01,2024-03-31,5,\n"  # row 9: differs from the stored row
        + f"{a},gp_visit,2024-04-01,2024-06-30,1.234,\n"  # row 10: three decimals
        + f"{a},gp_visit,2024-07-01,2024-07-31,1,\n"  # row 11: fine ...
        + f"{a},gp_visit,2024-07-01,2024-07-31,2,\n",  # row 12: ... the same period again
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected) as caught:
        run_import(db, coord, "service-use", f)
    found = {(p.record, p.field, p.rule) for p in caught.value.problems}
    assert found == {
        ("row 2", "unit_cost", "SRV-007"),
        ("row 3", "quantity", "SRV-008"),
        ("row 4", "period_end", "SRV-009"),
        ("row 5", "period_start", "SRV-010"),
        ("row 6", "period_end", "SRV-011"),
        ("row 7", "quantity", "IMP-005"),
        ("row 8", "child_id", "IMP-004"),
        ("row 9", "quantity", "IMP-010"),
        ("row 10", "quantity", "SRV-008"),
        ("row 12", "period_start", "IMP-011"),
    }
    assert _count(db) == 1
    # the Croydon researcher may not import Glasgow children's service use
    ok = tmp_path / "ok.csv"
    ok.write_text(HEADER + f"{a},gp_visit,2024-07-01,2024-07-31,1,\n", encoding="utf-8")
    with pytest.raises(ImportRejected) as caught:
        run_import(db, actors["research_cro"], "service-use", ok)
    assert {(p.record, p.rule) for p in caught.value.problems} == {("row 2", "IMP-004")}
    with pytest.raises(PermissionDenied):
        run_import(db, actors["statistician"], "service-use", ok)
    assert run_import(db, coord, "service-use", ok).new_records == 1
