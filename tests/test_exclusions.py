"""Post-randomisation exclusions: recorded (never deleted), visits not required, audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from noim.db.models import Allocation, PostRandomisationExclusion
from noim.db.session import Database
from noim.domain.exceptions import PermissionDenied, ReasonRequired, ValidationError
from noim.services import audit, exclusions, visits
from tests.conftest import Actors
from tests.factories import family_with_children
from tests.test_visits import randomised_family, visit_ids

DAY = timedelta(days=1)


def test_excluding_a_child_ends_all_its_unfinished_visits(db: Database, actors: Actors) -> None:
    coord, admin = actors["coord_gla"], actors["admin"]
    fam = randomised_family(db, coord, n_children=2)
    child, sibling = fam.children
    R = fam.randomised_on
    visits.complete_visit(db, coord, child, "baseline", R - DAY, today=R)
    with pytest.raises(ReasonRequired):
        exclusions.exclude_child(db, coord, child, R, " ", today=R)
    view = exclusions.exclude_child(db, coord, child, R, "entered care at 61 months", today=R)
    assert (view.family, view.child, view.children) == (fam.family, child, (child,))
    assert view.visits_not_required == 2  # 15m and 30m; the completed baseline stays
    shown = {v.timepoint: v for v in visits.list_visits(db, coord, child, today=R)}
    assert shown["baseline"].status == "completed_in_window"
    assert shown["15m"].status == shown["30m"].status == "not_required"
    assert "entered care at 61 months" in (shown["30m"].reason or "")
    assert {v.status for v in visits.list_visits(db, coord, sibling, today=R)} != {"not_required"}
    with pytest.raises(ValidationError, match="VIS-024"):
        exclusions.exclude_child(db, coord, child, R, "again", today=R)
    trail = audit.history(db, admin, "followup_visits", str(visit_ids(db, child)["30m"]))
    assert [r.new for r in trail if r.field == "status"] == ['"not_required"']
    assert "entered care at 61 months" in (trail[-1].reason or "")
    # the allocation is untouched and the exclusion is a record of its own
    with db.read() as s:
        assert s.scalar(select(Allocation.family_id)) is not None
        stored = s.scalars(select(PostRandomisationExclusion)).one()
        assert (stored.identified_on, stored.decided_by_id) == (R, coord.user_id)
    assert audit.verify(db, admin).ok


def test_excluding_a_family_covers_every_child(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    fam = randomised_family(db, coord, n_children=2)
    R = fam.randomised_on
    exclusions.exclude_child(db, coord, fam.children[0], R, "too old", today=R)
    view = exclusions.exclude_family(db, actors["admin"], fam.family, R, "not in care", today=R)
    assert view.child is None and view.children == fam.children
    assert view.visits_not_required == 3  # the first child's were already not required
    with pytest.raises(ValidationError, match="VIS-024"):
        exclusions.exclude_family(db, coord, fam.family, R, "again", today=R)
    with pytest.raises(ValidationError, match="VIS-024"):
        exclusions.exclude_child(db, coord, fam.children[1], R, "again", today=R)
    assert visits.due(db, coord, within_days=2000, today=R) == []


def test_only_randomised_families_and_plausible_dates(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    fam = randomised_family(db, coord)
    R = fam.randomised_on
    with pytest.raises(ValidationError, match="VIS-022"):
        exclusions.exclude_child(db, coord, fam.children[0], R - DAY, "x", today=R)
    other = family_with_children(db, coord, "GLA", (9,))
    with pytest.raises(ValidationError) as bad:
        exclusions.exclude_family(db, coord, other.trial_id, R + DAY, "x", today=R)
    assert [p.rule for p in bad.value.problems] == ["VIS-021", "VIS-023"]
    with db.read() as s:
        assert s.scalars(select(PostRandomisationExclusion)).all() == []


def test_who_may_exclude(db: Database, actors: Actors) -> None:
    fam = randomised_family(db, actors["coord_gla"])
    child, R = fam.children[0], fam.randomised_on
    for name in ("research_gla", "datamanager", "statistician"):
        with pytest.raises(PermissionDenied, match="write_trial_data"):
            exclusions.exclude_child(db, actors[name], child, R, "x", today=R)
    with pytest.raises(PermissionDenied, match="at site 'GLA'"):
        exclusions.exclude_child(db, actors["coord_cro"], child, R, "x", today=R)
    with pytest.raises(PermissionDenied, match="at site 'GLA'"):
        exclusions.exclude_family(db, actors["coord_cro"], fam.family, R, "x", today=R)
    exclusions.exclude_family(db, actors["coord_gla"], fam.family, R, "x", today=R)
