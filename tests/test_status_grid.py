"""The status grid's rule for what is still to enter at a visit (``forms_to_enter``): the
forms a visit's row shows due, which the home page links one by one."""

from __future__ import annotations

from datetime import date

import pytest

from noim.domain.durations import add_months
from noim.domain.status_grid import AssessmentFacts, VisitFacts, build_grid, forms_to_enter
from noim.domain.trialdef import default_definition

TARGET = date(2026, 3, 10)


@pytest.mark.parametrize(
    ("age", "entered", "expected"),
    [
        (10, set(), ("pedsql",)),  # the BITSEA from 12 months, the SDQ from 24
        (12, set(), ("bitsea", "pedsql")),
        (30, set(), ("sdq", "bitsea", "pedsql")),
        (30, {"sdq"}, ("bitsea", "pedsql")),
        (40, {"pedsql"}, ("sdq",)),  # the BITSEA stops at 35 months
        (60, {"sdq"}, ()),  # the PedsQL stops at 48: nothing left but the visit
    ],
)
def test_forms_to_enter_follow_the_age_on_the_target_date_and_what_is_entered(
    age: int, entered: set[str], expected: tuple[str, ...]
) -> None:
    baseline = default_definition().timepoints[0]
    assert forms_to_enter(baseline, add_months(TARGET, -age), TARGET, entered) == expected


@pytest.mark.parametrize("age", [6, 12, 20, 30, 36, 47, 50])
def test_forms_to_enter_are_the_due_cells_of_the_visits_grid_row(age: int) -> None:
    definition = default_definition()
    born = add_months(TARGET, -age)
    visit = VisitFacts(
        7, "baseline", "scheduled", TARGET, TARGET, add_months(TARGET, 2), None, None
    )
    done = [AssessmentFacts(1, "baseline", "pedsql", TARGET)] if age % 2 else []
    grid = build_grid(
        "L-0001-01-7", definition.timepoints, born, TARGET, TARGET, [visit], done, TARGET
    )
    due = tuple(c.form for c in grid.rows[0].cells[1:] if c.status in ("due", "overdue"))
    assert due or age > 48  # the window is open: something is due until the PedsQL stops
    entered = {a.instrument for a in done}
    assert set(forms_to_enter(definition.timepoints[0], born, TARGET, entered)) == set(due)
