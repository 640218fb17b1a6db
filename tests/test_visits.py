"""Follow-up visits after scheduling: rescheduling, outcomes, statuses and the list to chase.

Randomisation is dated today (the real date), so each test builds children whose
entry to care is two months before it and passes an explicit ``today`` to the
services; dates are computed from the randomisation date ``R`` and entry ``E``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from noim.db.models import AuditLog, Child, FollowUpVisit, LossToFollowUp
from noim.db.session import Database
from noim.domain.durations import add_months
from noim.domain.exceptions import PermissionDenied, ReasonRequired, ValidationError
from noim.domain.roles import Actor
from noim.domain.schedule import DERIVED_STATUSES
from noim.services import audit, consent, families, randomisation, visits
from tests.conftest import Actors
from tests.test_randomisation import SEED

DAY = timedelta(days=1)


@dataclass(frozen=True)
class Randomised:
    family: str
    children: tuple[str, ...]
    randomised_on: date  # R
    entered: date  # E


def randomised_family(
    db: Database, coord: Actor, n_children: int = 1, site: str = "GLA", setup: bool = True
) -> Randomised:
    """A family whose children entered care 60 days ago, randomised today."""
    from noim.db.base import utcnow

    if setup:
        randomisation.setup(db, _admin(db), SEED)
    entered = utcnow().date() - 60 * DAY
    la = {"GLA": "GCC", "CRO": "CROY"}[site]
    fam = families.register_family(db, coord, site, la, True if site == "CRO" else None)
    for i in range(n_children):
        child = families.add_child(
            db, coord, fam.trial_id, add_months(entered, -8 - 12 * i), "female", entered
        )
        consent.decide_eligibility(db, coord, child.trial_id, True, entered + DAY)
        consent.record_consent(db, coord, child.trial_id, "local_authority", "v3", entered + DAY)
    allocation = randomisation.randomise(db, coord, fam.trial_id)
    return Randomised(fam.trial_id, allocation.children, allocation.randomised_at.date(), entered)


def _admin(db: Database) -> Actor:
    from noim.services.users import resolve_actor

    return resolve_actor(db, "admin")


def by_timepoint(rows: list[visits.VisitView]) -> dict[str, visits.VisitView]:
    return {v.timepoint: v for v in rows}


def visit_ids(db: Database, child: str) -> dict[str, int]:
    with db.read() as s:
        return dict(
            s.execute(
                select(FollowUpVisit.timepoint_code, FollowUpVisit.id)
                .join(Child, Child.id == FollowUpVisit.child_id)
                .where(Child.trial_id == child)
            ).all()
        )


def audit_rows(db: Database) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(AuditLog)) or 0)


# --------------------------------------------------------------------------- rescheduling


def test_correcting_entry_to_care_moves_only_unfinished_entry_anchored_visits(
    db: Database, actors: Actors
) -> None:
    coord, admin = actors["coord_gla"], actors["admin"]
    fam = randomised_family(db, coord, n_children=2)
    first, second = fam.children
    E, R = fam.entered, fam.randomised_on
    before = {c: by_timepoint(visits.list_visits(db, coord, c, today=R)) for c in fam.children}
    visits.complete_visit(db, coord, second, "baseline", R - 5 * DAY, today=R)
    new_entry = E - 14 * DAY
    for child in fam.children:
        families.correct_child(
            db, coord, child, {"entered_care_on": new_entry}, reason="date from court papers"
        )
    for child in fam.children:
        after = by_timepoint(visits.list_visits(db, coord, child, today=R))
        assert after["15m"].anchor_date == new_entry
        assert after["15m"].target_date == add_months(new_entry, 15)
        assert (after["15m"].window_start, after["15m"].window_end) == (
            add_months(new_entry, 14),
            add_months(new_entry, 18),
        )
        assert after["30m"] == before[child]["30m"]  # anchored on randomisation: untouched
    moved = by_timepoint(visits.list_visits(db, coord, first, today=R))["baseline"]
    assert (moved.anchor_date, moved.target_date) == (new_entry, new_entry + 28 * DAY)
    assert (moved.window_start, moved.window_end) == (new_entry + 28 * DAY, new_entry + 98 * DAY)
    kept = by_timepoint(visits.list_visits(db, coord, second, today=R))["baseline"]
    assert kept.anchor_date == E and kept.completed_on == R - 5 * DAY  # completed: kept as is

    trail = audit.history(db, admin, "followup_visits", str(visit_ids(db, first)["15m"]))
    changes = {r.field: (r.old, r.new, r.reason) for r in trail if r.action == "update"}
    assert changes["anchor_date"] == (  # canonical JSON values
        f'"{E.isoformat()}"',
        f'"{new_entry.isoformat()}"',
        "date from court papers",
    )
    assert set(changes) == {"anchor_date", "target_date", "window_start", "window_end"}
    assert audit.verify(db, admin).ok


def test_an_invalid_correction_writes_nothing(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    fam = randomised_family(db, coord)
    child = fam.children[0]
    before = visits.list_visits(db, coord, child, today=fam.randomised_on)
    n_audit = audit_rows(db)
    with pytest.raises(ValidationError, match="CHD-001"):
        families.correct_child(
            db, coord, child, {"entered_care_on": date(2000, 1, 1)}, reason="typo"
        )
    assert visits.list_visits(db, coord, child, today=fam.randomised_on) == before
    assert audit_rows(db) == n_audit


def test_other_corrections_do_not_touch_visits(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    fam = randomised_family(db, coord)
    child = fam.children[0]
    n_audit = audit_rows(db)
    families.correct_child(db, coord, child, {"sex": "male"}, reason="recorded wrongly")
    assert audit_rows(db) == n_audit + 1  # the child's sex only


# --------------------------------------------------------------------------- outcomes


def test_every_status_is_derived_and_shown(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    fam = randomised_family(db, coord, n_children=2)
    a, b = fam.children
    E, R = fam.entered, fam.randomised_on
    later = R + 40 * 30 * DAY  # every window has closed
    seen: set[str] = set()

    def statuses(child: str, today: date) -> dict[str, str]:
        out = {v.timepoint: v.status for v in visits.list_visits(db, coord, child, today=today)}
        seen.update(out.values())
        return out

    # E + 60 days: baseline window open, the others not yet
    assert statuses(a, R) == {"baseline": "due", "15m": "scheduled", "30m": "scheduled"}
    fifteen = by_timepoint(visits.list_visits(db, coord, a, today=R))["15m"]
    assert statuses(a, fifteen.window_end + DAY)["15m"] == "overdue"
    visits.complete_visit(db, coord, a, "baseline", R - 3 * DAY, today=R)
    visits.complete_visit(db, coord, a, "15m", fifteen.window_start - 3 * DAY, today=later)
    thirty = by_timepoint(visits.list_visits(db, coord, a, today=R))["30m"]
    visits.complete_visit(db, coord, a, "30m", thirty.window_end + 10 * DAY, today=later)
    assert statuses(a, later) == {
        "baseline": "completed_in_window",
        "15m": "completed_early",
        "30m": "completed_late",
    }
    visits.record_missed(db, coord, b, "baseline", "carer unreachable", today=R)
    visits.record_not_required(db, coord, b, "15m", "placed abroad")
    assert statuses(b, later) == {"baseline": "missed", "15m": "not_required", "30m": "overdue"}
    assert seen == set(DERIVED_STATUSES)
    shown = by_timepoint(visits.list_visits(db, coord, b, today=later))
    assert shown["baseline"].reason == "carer unreachable"
    assert shown["baseline"].window_start > E


def test_completion_dates_are_checked_and_every_problem_reported(
    db: Database, actors: Actors
) -> None:
    coord = actors["coord_gla"]
    fam = randomised_family(db, coord)
    child = fam.children[0]
    E, R = fam.entered, fam.randomised_on
    with pytest.raises(ValidationError) as bad:
        visits.complete_visit(db, coord, child, "baseline", date(2000, 1, 1), today=R)
    assert [p.rule for p in bad.value.problems] == ["VIS-004", "VIS-005"]
    with pytest.raises(ValidationError, match="VIS-003"):
        visits.complete_visit(db, coord, child, "baseline", R + DAY, today=R)
    with pytest.raises(ValidationError, match="VIS-006"):  # a follow-up before randomisation
        visits.complete_visit(db, coord, child, "15m", R - DAY, today=R)
    with pytest.raises(ValidationError, match="VIS-001") as unknown:
        visits.complete_visit(db, coord, child, "6m", R, today=R)
    assert "baseline, 15m, 30m" in str(unknown.value)
    # a baseline done before randomisation (the order changed during the trial) is fine
    done = visits.complete_visit(db, coord, child, "baseline", E + 30 * DAY, today=R)
    assert done.status == "completed_in_window"
    with pytest.raises(ValidationError, match="VIS-007"):
        visits.complete_visit(db, coord, child, "baseline", E + 31 * DAY, today=R)


def test_missed_only_once_the_window_opens_and_with_a_reason(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    fam = randomised_family(db, coord)
    child = fam.children[0]
    with pytest.raises(ReasonRequired):
        visits.record_missed(db, coord, child, "baseline", " ", today=fam.randomised_on)
    with pytest.raises(ValidationError, match="VIS-008"):
        visits.record_missed(db, coord, child, "30m", "no contact", today=fam.randomised_on)
    with pytest.raises(ReasonRequired):
        visits.record_not_required(db, coord, child, "30m", "")


def test_reopen_corrects_an_outcome_with_a_reason(db: Database, actors: Actors) -> None:
    coord, admin = actors["coord_gla"], actors["admin"]
    fam = randomised_family(db, coord)
    child, R = fam.children[0], fam.randomised_on
    with pytest.raises(ValidationError, match="VIS-009"):
        visits.reopen_visit(db, coord, child, "baseline", "nothing to reopen")
    visits.complete_visit(db, coord, child, "baseline", R - 2 * DAY, today=R)
    with pytest.raises(ReasonRequired):
        visits.reopen_visit(db, coord, child, "baseline", "")
    view = visits.reopen_visit(db, coord, child, "baseline", "wrong child's visit")
    assert view.status in ("due", "overdue") and view.completed_on is None
    trail = audit.history(db, admin, "followup_visits", str(visit_ids(db, child)["baseline"]))
    reopened = [r for r in trail if r.field == "completed_on" and r.new == "null"]
    assert reopened and reopened[-1].reason == "wrong child's visit"
    again = visits.complete_visit(db, coord, child, "baseline", R - DAY, today=R)
    assert again.completed_on == R - DAY
    assert audit.verify(db, admin).ok


def test_complete_visits_changes_only_scheduled_visits(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    fam = randomised_family(db, coord)
    child, R = fam.children[0], fam.randomised_on
    ids = visit_ids(db, child)
    visits.complete_visit(db, coord, child, "baseline", R - 4 * DAY, today=R)
    later = R + 40 * 30 * DAY
    fifteen = by_timepoint(visits.list_visits(db, coord, child, today=R))["15m"]
    with db.write(coord) as s:
        assert (
            visits.complete_visits(
                s, {ids["baseline"]: R, ids["15m"]: fifteen.target_date}, None, later
            )
            == 1
        )
    shown = by_timepoint(visits.list_visits(db, coord, child, today=later))
    assert shown["baseline"].completed_on == R - 4 * DAY  # already completed: unchanged
    assert shown["15m"].status == "completed_in_window"
    with pytest.raises(ValidationError, match="VIS-001"), db.write(coord) as s:
        visits.complete_visits(s, {999_999: R}, None, later)


def test_a_voided_child_has_no_visits_to_record(db: Database, actors: Actors) -> None:
    from tests.factories import family_with_children

    coord = actors["coord_gla"]
    fam = family_with_children(db, coord, "GLA", (9,))
    families.void_family(db, coord, fam.trial_id, reason="duplicate")
    with pytest.raises(ValidationError, match="VIS-002"):
        visits.complete_visit(db, coord, fam.children[0].trial_id, "baseline", date(2024, 4, 1))


def test_a_child_not_yet_randomised_has_no_visits(db: Database, actors: Actors) -> None:
    from tests.factories import family_with_children

    coord = actors["coord_gla"]
    child = family_with_children(db, coord, "GLA", (9,)).children[0].trial_id
    assert visits.list_visits(db, coord, child) == []
    with pytest.raises(ValidationError, match=r"scheduled at randomisation.*VIS-001"):
        visits.complete_visit(db, coord, child, "baseline", date(2024, 4, 1))


def test_researchers_record_visits_but_do_not_waive_them(db: Database, actors: Actors) -> None:
    coord, researcher = actors["coord_gla"], actors["research_gla"]
    fam = randomised_family(db, coord)
    child, R = fam.children[0], fam.randomised_on
    visits.complete_visit(db, researcher, child, "baseline", R, today=R)
    with pytest.raises(PermissionDenied, match="write_trial_data"):
        visits.record_not_required(db, researcher, child, "30m", "too old")
    with pytest.raises(PermissionDenied, match="write_assessments"):
        visits.complete_visit(db, actors["datamanager"], child, "15m", R, today=R)


# --------------------------------------------------------------------------- the list to chase


def test_due_list_at_a_fixed_today(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    fams = [randomised_family(db, coord, setup=i == 0) for i in range(5)]
    chased, lost, excluded, withdrawn, intervention_only = (f.children[0] for f in fams)
    R = fams[0].randomised_on
    with db.write(coord) as s:
        lost_id = s.scalar(select(Child.id).where(Child.trial_id == lost))
        assert lost_id is not None
        s.add(LossToFollowUp(child_id=lost_id, declared_on=R, reason="family moved, no address"))
    from noim.services import exclusions

    exclusions.exclude_child(db, coord, excluded, R, "over age at entry", today=R)
    consent.record_withdrawal(db, coord, withdrawn, R, "follow_up", "carer", "moving")
    consent.record_withdrawal(db, coord, intervention_only, R, "intervention", "carer", "x")

    rows = visits.due(db, coord, today=R)
    assert [(r.child, r.timepoint, r.status) for r in rows] == [
        (chased, "baseline", "due"),
        (intervention_only, "baseline", "due"),
    ]
    soon = visits.due(db, coord, within_days=500, today=R)
    assert [r.window_end for r in soon] == sorted(r.window_end for r in soon)
    assert {(r.child, r.timepoint) for r in soon} == {
        (c, tp) for c in (chased, intervention_only) for tp in ("baseline", "15m")
    }
    only = visits.due(db, coord, within_days=500, today=R, status="scheduled")
    assert {r.timepoint for r in only} == {"15m"}
    with pytest.raises(ValidationError, match="VIS-010"):
        visits.due(db, coord, today=R, status="completed_late")
    # the baseline visits of the rest stay to be recorded, and are overdue later on
    shown = by_timepoint(visits.list_visits(db, coord, lost, today=R + 200 * DAY))
    assert shown["baseline"].status == "overdue"
    # voiding the loss to follow-up brings the child back to the list
    with db.write(coord, reason="found again") as s:
        loss = s.scalar(select(LossToFollowUp))
        assert loss is not None
        from noim.db.base import utcnow

        loss.voided_at, loss.void_reason = utcnow(), "found again"
    assert lost in {r.child for r in visits.due(db, coord, today=R)}


# --------------------------------------------------------------------------- site scope


Call = Callable[[Database, Actor, str, date], Any]

CALLS: list[tuple[str, Call]] = [
    ("list_visits", lambda db, a, c, r: visits.list_visits(db, a, c, today=r)),
    ("due(site)", lambda db, a, c, r: visits.due(db, a, "GLA", today=r)),
    ("complete_visit", lambda db, a, c, r: visits.complete_visit(db, a, c, "baseline", r, r)),
    ("record_missed", lambda db, a, c, r: visits.record_missed(db, a, c, "baseline", "x", r)),
    ("record_not_required", lambda db, a, c, r: visits.record_not_required(db, a, c, "15m", "x")),
]


@pytest.mark.parametrize(("name", "call"), CALLS, ids=[n for n, _ in CALLS])
def test_other_sites_are_refused(db: Database, actors: Actors, name: str, call: Call) -> None:
    fam = randomised_family(db, actors["coord_gla"])
    child, R = fam.children[0], fam.randomised_on
    with pytest.raises(PermissionDenied, match="at site 'GLA'"):
        call(db, actors["coord_cro"], child, R)
    call(db, actors["coord_gla"], child, R)


def test_reopen_is_refused_at_another_site(db: Database, actors: Actors) -> None:
    fam = randomised_family(db, actors["coord_gla"])
    child, R = fam.children[0], fam.randomised_on
    visits.complete_visit(db, actors["coord_gla"], child, "baseline", R, today=R)
    with pytest.raises(PermissionDenied, match="at site 'GLA'"):
        visits.reopen_visit(db, actors["coord_cro"], child, "baseline", "x")
    with pytest.raises(PermissionDenied, match="at site 'GLA'"):
        visits.list_visits(db, actors["research_cro"], child)
    assert visits.reopen_visit(db, actors["admin"], child, "baseline", "x").completed_on is None
