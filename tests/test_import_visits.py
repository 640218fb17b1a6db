"""Import kind ``visits``: outcomes of scheduled visits through the visit rules."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from noim.db.session import Database
from noim.domain.exceptions import ImportRejected
from noim.services import visits
from noim.services.imports import run_import
from tests.conftest import Actors
from tests.test_visits import by_timepoint, randomised_family

DAY = timedelta(days=1)


def test_visit_outcomes_import_atomic_and_idempotent(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    coord = actors["coord_gla"]
    fam = randomised_family(db, coord, n_children=2)
    a, b = fam.children
    E = fam.entered
    f = tmp_path / "visits.csv"
    f.write_text(
        "child_id,timepoint,outcome,date,reason\n"
        f"{a},baseline,completed,{E + 45 * DAY},\n"
        f"{a},30m,not_required,,moved abroad\n"
        f"{b},15m,missed,,no answer\n"  # window not open yet: VIS-008
        f"{b},baseline,completed,{E - 5 * DAY},\n"  # before the anchor: VIS-005
        f"{b},12m,completed,{E + 45 * DAY},\n"  # no such visit: VIS-001
        f"{b},30m,not_required,,\n",  # no reason
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected) as caught:
        run_import(db, coord, "visits", f)
    got = {(p.record, p.field, p.rule) for p in caught.value.problems}
    assert got == {
        ("row 4", "outcome", "VIS-008"),
        ("row 5", "date", "VIS-005"),
        ("row 6", "timepoint", "VIS-001"),
        ("row 7", "reason", "VIS-000"),
    }
    assert by_timepoint(visits.list_visits(db, coord, a))["baseline"].completed_on is None

    f.write_text(
        "child_id,timepoint,outcome,date,reason\n"
        f"{a},baseline,completed,{E + 45 * DAY},\n"
        f"{a},30m,not_required,,moved abroad\n",
        encoding="utf-8",
    )
    report = run_import(db, coord, "visits", f)
    assert (report.new_records, report.unchanged_records) == (2, 0)
    shown = by_timepoint(visits.list_visits(db, coord, a))
    assert shown["baseline"].status == "completed_in_window"
    assert shown["30m"].status == "not_required"
    again = run_import(db, coord, "visits", f)
    assert (again.new_records, again.unchanged_records) == (0, 2)

    f.write_text(
        f"child_id,timepoint,outcome,date\n{a},baseline,completed,{E + 46 * DAY}\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected) as conflict:
        run_import(db, coord, "visits", f)
    assert [p.rule for p in conflict.value.problems] == ["IMP-010"]
