"""Visit dates from the right anchor, and derived statuses."""

from __future__ import annotations

from datetime import date

import pytest

from noim.db.session import Database
from noim.domain.exceptions import PermissionDenied
from noim.domain.schedule import plan_visits, visit_status
from noim.domain.trialdef import default_definition
from tests.conftest import Actors


def test_nim_schedule_uses_two_anchors() -> None:
    visits = {
        v.timepoint: v
        for v in plan_visits(default_definition().timepoints, date(2024, 1, 31), date(2024, 4, 15))
    }
    base, fifteen, thirty = visits["baseline"], visits["15m"], visits["30m"]
    assert (base.anchor_date, base.window_start, base.window_end) == (
        date(2024, 1, 31),
        date(2024, 2, 28),
        date(2024, 5, 8),
    )
    assert (fifteen.anchor_date, fifteen.target_date) == (
        date(2024, 1, 31),
        date(2025, 4, 30),
    )  # month-end clamp
    assert (thirty.anchor_date, thirty.target_date) == (date(2024, 4, 15), date(2026, 10, 15))
    assert thirty.window_start == date(2026, 8, 15) and thirty.window_end == date(2027, 2, 15)


def test_randomisation_anchored_visits_wait_for_randomisation() -> None:
    codes = [
        v.timepoint for v in plan_visits(default_definition().timepoints, date(2024, 1, 31), None)
    ]
    assert codes == ["baseline", "15m"]


@pytest.mark.parametrize(
    ("stored", "completed", "today", "expected"),
    [
        ("scheduled", None, date(2024, 1, 1), "scheduled"),
        ("scheduled", None, date(2024, 2, 1), "due"),
        ("scheduled", None, date(2024, 3, 1), "due"),
        ("scheduled", None, date(2024, 3, 2), "overdue"),
        ("completed", date(2024, 2, 10), date(2025, 1, 1), "completed_in_window"),
        ("completed", date(2024, 3, 9), date(2025, 1, 1), "completed_late"),
        ("completed", date(2024, 1, 9), date(2025, 1, 1), "completed_early"),
        ("missed", None, date(2025, 1, 1), "missed"),
        ("not_required", None, date(2024, 2, 1), "not_required"),
    ],
)
def test_derived_status(stored: str, completed: date | None, today: date, expected: str) -> None:
    assert visit_status(stored, date(2024, 2, 1), date(2024, 3, 1), completed, today) == expected


def test_visits_are_scheduled_at_randomisation_and_listed_when_due(
    db: Database, actors: Actors
) -> None:
    from noim.services import families, randomisation, visits
    from tests.factories import TODAY
    from tests.test_randomisation import SEED, ready_family

    randomisation.setup(db, actors["admin"], SEED)
    fam = ready_family(db, actors["coord_gla"], "GLA", (8, 30))
    allocation = randomisation.randomise(db, actors["coord_gla"], fam)
    randomised = allocation.randomised_at.date()
    late = families.add_child(
        db, actors["coord_gla"], fam, date(2024, 1, 5), "female", date(2024, 3, 1), today=TODAY
    )
    rows = visits.due(db, actors["coord_gla"], today=date(2030, 1, 1))  # everything overdue by then
    assert {(r.child, r.timepoint) for r in rows} == {
        (c, tp) for c in (*allocation.children, late.trial_id) for tp in ("baseline", "15m", "30m")
    }
    assert all(r.status == "overdue" for r in rows)
    assert [r.window_end for r in rows] == sorted(r.window_end for r in rows)
    thirty = [r for r in rows if r.timepoint == "30m"]
    assert all(r.target_date.year == randomised.year + 2 + (randomised.month > 6) for r in thirty)
    assert visits.due(db, actors["coord_cro"], today=date(2030, 1, 1)) == []
    with pytest.raises(PermissionDenied):
        visits.due(db, actors["coord_cro"], site="GLA")


def test_withdrawal_from_follow_up_ends_only_future_visits(db: Database, actors: Actors) -> None:
    from noim.domain.exceptions import ReasonRequired, ValidationError
    from noim.services import audit, consent, randomisation, visits
    from tests.test_randomisation import SEED, ready_family

    coord = actors["coord_gla"]
    randomisation.setup(db, actors["admin"], SEED)
    fam = ready_family(db, coord, "GLA", (8,))
    child = randomisation.randomise(db, coord, fam).children[0]
    with pytest.raises(ReasonRequired):
        consent.record_withdrawal(db, coord, child, date(2025, 1, 10), "follow_up", "carer", " ")
    with pytest.raises(ValidationError, match="WDR-001"):
        consent.record_withdrawal(db, coord, child, date(2025, 1, 10), "everything", "carer", "x")
    # entered care 2024-03-01: the baseline window closed in June 2024, before this withdrawal
    view = consent.record_withdrawal(
        db, coord, child, date(2025, 1, 10), "follow_up", "carer", "moving abroad"
    )
    assert view.visits_not_required == 2
    listed = visits.list_visits(db, coord, child, today=date(2030, 1, 1))
    statuses = {v.timepoint: v.status for v in listed}
    # the baseline window closed before the withdrawal: still to be recorded as missed
    assert statuses == {"baseline": "overdue", "15m": "not_required", "30m": "not_required"}
    assert all(v.reason and "moving abroad" in v.reason for v in listed[1:])
    # a child withdrawn from follow-up is not chased
    assert visits.due(db, coord, today=date(2030, 1, 1)) == []
    assert audit.verify(db, actors["admin"]).ok


def test_withdrawal_from_the_intervention_keeps_follow_up(db: Database, actors: Actors) -> None:
    from noim.services import consent, randomisation, visits
    from tests.test_randomisation import SEED, ready_family

    coord = actors["coord_gla"]
    randomisation.setup(db, actors["admin"], SEED)
    child = randomisation.randomise(db, coord, ready_family(db, coord, "GLA", (8,))).children[0]
    view = consent.record_withdrawal(
        db, coord, child, date(2025, 1, 10), "intervention", "birth_parent", "declined"
    )
    assert view.visits_not_required == 0
    assert len(visits.due(db, coord, today=date(2030, 1, 1))) == 3
