"""The coordinators' work queue (noim.services.workqueue): sections, scope, blinding, cost."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from noim.db.session import Database
from noim.domain.codes import SAE_CATEGORIES
from noim.domain.exceptions import PermissionDenied, ValidationError
from noim.domain.trialdef import default_definition
from noim.services import consent, queries, randomisation, safety, screening, visits
from noim.services.families import FamilyView
from noim.services.workqueue import AGE_BANDS, WorkQueue, query_ages, work_queue
from tests.conftest import Actors
from tests.factories import family_with_children, rule_ids

AS_OF = date(2026, 1, 1)
ENTERED = date(2025, 6, 2)


def _coord(actors: Actors, site: str) -> Any:
    return actors["coord_gla" if site == "GLA" else "coord_cro"]


def _ready_family(db: Database, actors: Actors, site: str, n: int = 1) -> FamilyView:
    """A family with ``n`` children, eligible and consented: ready to randomise."""
    coord = _coord(actors, site)
    fam = family_with_children(db, coord, site, (10,) * n, entered=ENTERED)
    for child in fam.children:
        consent.decide_eligibility(db, coord, child.trial_id, True, ENTERED)
        consent.record_consent(db, coord, child.trial_id, "local_authority", "v3", ENTERED)
    return fam


def _randomised_family(db: Database, actors: Actors, site: str, days: int) -> FamilyView:
    family = _ready_family(db, actors, site)
    at = datetime.combine(ENTERED + timedelta(days=30 + days), datetime.min.time(), UTC)
    randomisation.randomise(db, _coord(actors, site), family.trial_id, randomised_at=at)
    return family


def build(db: Database, actors: Actors, site: str, n: int) -> dict[str, list[str]]:
    """``n`` of each kind of thing to do at ``site``; returns the family IDs by kind."""
    coord = _coord(actors, site)
    out: dict[str, list[str]] = {"randomised": [], "ready": [], "pending": [], "ineligible": []}
    for i in range(n):
        fam = _randomised_family(db, actors, site, i)
        out["randomised"].append(fam.trial_id)
        kid = fam.children[0].trial_id
        safety.add_sae(
            db,
            coord,
            kid,
            ENTERED + timedelta(days=40),
            ENTERED + timedelta(days=41),
            _sae_category(),
            f"admitted to hospital; seen by the GIFT team {i}",
        )
        queries.raise_query(
            db,
            actors["datamanager"],
            "children",
            kid,
            f"Is the date of birth right? The LIFT worker says otherwise ({i})",
            "date_of_birth",
        )
        out["ready"].append(_ready_family(db, actors, site).trial_id)
        out["pending"].append(
            family_with_children(db, coord, site, (10, 20), entered=ENTERED).trial_id
        )
        ineligible = family_with_children(db, coord, site, (10,), entered=ENTERED)
        consent.decide_eligibility(
            db, coord, ineligible.children[0].trial_id, False, ENTERED, "aged over 60 months"
        )
        out["ineligible"].append(ineligible.trial_id)
    return out


def _sae_category() -> str:
    return SAE_CATEGORIES[2]


@pytest.fixture
def ready_db(db: Database, actors: Actors) -> Database:
    randomisation.setup(db, actors["admin"], 12345)
    return db


@contextmanager
def counting(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.startswith("BEGIN"):
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", before)


def test_sections_at_own_site(ready_db: Database, actors: Actors) -> None:
    built = build(ready_db, actors, "GLA", 2)
    q = work_queue(ready_db, actors["coord_gla"], as_of=AS_OF)
    assert q.sites == ("GLA",)
    # follow-ups: the same visits `noim followups due` lists, soonest first
    due = visits.due(ready_db, actors["coord_gla"], today=AS_OF)
    assert q.followups_total == len(due) > 0
    assert [(v.child, v.timepoint) for v in q.followups] == [(v.child, v.timepoint) for v in due]
    assert [v.window_end for v in q.followups] == sorted(v.window_end for v in q.followups)
    assert all(v.status in ("due", "overdue") and v.visit_id > 0 for v in q.followups)
    # queries: the open ones on the site's records
    assert q.queries_total == 2 and {x.status for x in q.queries} == {"open"}
    # waiting: ready and pending families, oldest first; ineligible-only and randomised left out
    waiting = {w.family: w for w in q.waiting}
    assert set(waiting) == set(built["ready"]) | set(built["pending"])
    assert q.waiting_total == 4
    assert [w.registered_at for w in q.waiting] == sorted(w.registered_at for w in q.waiting)
    for fam in built["ready"]:
        assert waiting[fam].ready and waiting[fam].missing == ()
    for fam in built["pending"]:
        w = waiting[fam]
        assert not w.ready and w.children == 2
        assert {p.rule for p in w.missing} == {"RND-004", "RND-005"}
        assert len(w.missing) == 4  # eligibility and consent of each of the two children
    # SAEs with follow-up outstanding
    assert q.saes_total == 2 and all(x.completed_at is None for x in q.saes)


def test_gate_report_says_what_randomise_refuses_with(ready_db: Database, actors: Actors) -> None:
    built = build(ready_db, actors, "GLA", 1)
    q = work_queue(ready_db, actors["coord_gla"], as_of=AS_OF)
    (pending,) = [w for w in q.waiting if w.family == built["pending"][0]]
    with pytest.raises(ValidationError) as exc:
        randomisation.randomise(ready_db, actors["coord_gla"], pending.family)
    assert set(exc.value.problems) == set(pending.missing)
    (ready,) = [w for w in q.waiting if w.family == built["ready"][0]]
    randomisation.randomise(ready_db, actors["coord_gla"], ready.family)
    after = work_queue(ready_db, actors["coord_gla"], as_of=AS_OF)
    assert ready.family not in {w.family for w in after.waiting}
    assert after.waiting_total == q.waiting_total - 1


def test_completed_and_answered_leave_the_queue(ready_db: Database, actors: Actors) -> None:
    build(ready_db, actors, "GLA", 1)
    coord = actors["coord_gla"]
    q = work_queue(ready_db, coord, as_of=AS_OF)
    (sae,) = q.saes
    safety.update_sae(
        ready_db,
        coord,
        sae.id,
        {"relatedness": "not_related", "expected": False, "outcome": "recovered"},
    )
    safety.complete_sae(ready_db, coord, sae.id)
    (query,) = q.queries
    queries.respond(ready_db, coord, query.id, "checked against the birth certificate")
    after = work_queue(ready_db, coord, as_of=AS_OF)
    assert after.saes_total == 0 and after.saes == ()
    assert after.queries_total == 0 and after.queries == ()


def test_other_site_sees_nothing(ready_db: Database, actors: Actors) -> None:
    build(ready_db, actors, "GLA", 2)
    for name in ("coord_cro", "research_cro"):
        q = work_queue(ready_db, actors[name], as_of=AS_OF)
        assert q.sites == ("CRO",)
        assert (q.followups_total, q.queries_total, q.waiting_total, q.saes_total) == (0, 0, 0, 0)
        assert not (q.followups or q.queries or q.waiting or q.saes)
        assert "G-" not in repr(q)
    # roles that see every site see GLA's
    q = work_queue(ready_db, actors["datamanager"], as_of=AS_OF)
    assert q.sites == ("CRO", "GLA") and q.waiting_total == 4 and q.saes_total == 2


def test_blinded_roles_get_no_arm(ready_db: Database, actors: Actors) -> None:
    build(ready_db, actors, "GLA", 2)
    words = set(default_definition().arm_words())
    assert {"NIM", "GIFT", "LIFT"} <= words
    for name in ("research_gla", "datamanager", "statistician"):
        text = repr(work_queue(ready_db, actors[name], as_of=AS_OF))
        found = [w for w in words if w in text]
        assert found == [], f"{name} saw {found}"
        assert "[arm masked]" in text
    # a coordinator (told the arm at randomisation) reads the texts as written
    assert "GIFT" in repr(work_queue(ready_db, actors["coord_gla"], as_of=AS_OF))


def test_limit_keeps_counts(ready_db: Database, actors: Actors) -> None:
    build(ready_db, actors, "GLA", 2)
    q = work_queue(ready_db, actors["coord_gla"], as_of=AS_OF, limit=1)
    assert len(q.followups) == len(q.queries) == len(q.waiting) == len(q.saes) == 1
    assert q.followups_total > 1 and q.queries_total == 2 and q.waiting_total == 4
    with pytest.raises(ValidationError) as exc:
        work_queue(ready_db, actors["coord_gla"], limit=0)
    assert rule_ids(exc) == {"WQ-001"}


def test_roles_without_trial_data_are_refused(db: Database, actors: Actors) -> None:
    with pytest.raises(PermissionDenied):
        work_queue(db, actors["dmc_chair"])


def test_empty_trial(db: Database, actors: Actors) -> None:
    q = work_queue(db, actors["coord_gla"], as_of=AS_OF)
    assert isinstance(q, WorkQueue)
    assert (q.followups_total, q.queries_total, q.waiting_total, q.saes_total) == (0, 0, 0, 0)


def test_statements_do_not_grow_with_the_trial(ready_db: Database, actors: Actors) -> None:
    screening.add_entry(ready_db, actors["coord_gla"], "GLA", ENTERED, 1, True)
    build(ready_db, actors, "GLA", 2)
    build(ready_db, actors, "CRO", 1)
    counts = []
    for extra in (0, 4):
        if extra:
            build(ready_db, actors, "GLA", extra)
            build(ready_db, actors, "CRO", extra)
        for name in ("coord_gla", "datamanager"):
            actor = actors[name]
            with counting(ready_db) as statements:
                q = work_queue(ready_db, actor, as_of=AS_OF, limit=3)
            assert len(q.waiting) == 3
            counts.append((name, len(statements)))
    assert counts[:2] == counts[2:]


@pytest.mark.parametrize("days_later", [6, 7, 29, 90])
def test_query_ages_agree_with_the_list(
    ready_db: Database, actors: Actors, days_later: int
) -> None:
    build(ready_db, actors, "GLA", 1)
    build(ready_db, actors, "CRO", 1)
    (gla_query,) = queries.list_queries(ready_db, actors["coord_gla"])
    queries.respond(ready_db, actors["coord_gla"], gla_query.id, "checked")
    today = gla_query.raised_at.date() + timedelta(days=days_later)
    for name, sites in (("datamanager", 2), ("coord_cro", 1), ("research_gla", 1)):
        ages = query_ages(ready_db, actors[name], as_of=today)
        listed = queries.list_queries(
            ready_db, actors[name], statuses=["open", "answered"], today=today
        )
        assert ages.total == len(listed) == sites
        expected = {st: dict.fromkeys((lab for lab, _d in AGE_BANDS), 0) for st in ages.counts}
        for q in listed:
            label = next(lab for lab, d in reversed(AGE_BANDS) if q.age_days >= d)
            expected[q.status][label] += 1
        assert ages.counts == expected
