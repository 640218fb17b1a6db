"""Randomising families through the service: gate, once-only, reproducible, sealed list, concurrency."""

from __future__ import annotations

import threading
from datetime import date

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from noim.db.models import Allocation
from noim.db.session import Database
from noim.domain.exceptions import (
    AlreadyRandomised,
    NotInitialised,
    PermissionDenied,
    ValidationError,
)
from noim.domain.randomisation import minimise
from noim.domain.roles import Actor
from noim.domain.trialdef import builtin_definition
from noim.services import consent, families, randomisation, setup, users
from tests.conftest import Actors, examples
from tests.dbutil import drop_protection, raw
from tests.factories import TODAY, family_with_children

SEED = 20240501


def ready_family(
    db: Database, coord: Actor, site: str = "GLA", ages: tuple[int, ...] = (10,)
) -> str:
    """A family whose children are all eligible and consented."""
    fam = family_with_children(db, coord, site, ages)
    for child in fam.children:
        consent.decide_eligibility(db, coord, child.trial_id, True, date(2024, 3, 20))
        consent.record_consent(
            db, coord, child.trial_id, "local_authority", "v3.1", date(2024, 3, 21)
        )
    return fam.trial_id


def test_randomise_needs_set_up(db: Database, actors: Actors) -> None:
    fam = ready_family(db, actors["coord_gla"])
    with pytest.raises(NotInitialised, match="noim randomisation setup --seed"):
        randomisation.randomise(db, actors["coord_gla"], fam)


def test_gate_names_every_missing_item(db: Database, actors: Actors) -> None:
    randomisation.setup(db, actors["admin"], SEED)
    fam = family_with_children(db, actors["coord_cro"], "CRO", (5, 40))
    with pytest.raises(ValidationError) as info:
        randomisation.randomise(db, actors["coord_cro"], fam.trial_id)
    found = {(p.record, p.rule) for p in info.value.problems}
    for child in fam.children:
        assert (f"child {child.trial_id}", "RND-004") in found
        assert (f"child {child.trial_id}", "RND-005") in found
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Allocation)) == 0


def test_family_randomised_once_and_siblings_share_the_arm(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    randomisation.setup(db, actors["admin"], SEED)
    fam = ready_family(db, coord, "GLA", (8, 30))
    view = randomisation.randomise(db, coord, fam)
    assert view.arm in ("NIM", "SAU") and view.sequence == 1
    assert view.arm_label == {"NIM": "GIFT", "SAU": "Enhanced social work service"}[view.arm]
    assert view.factors == {"site": "GLA", "youngest_age_band": "0-11m", "family_size": "2+"}
    assert len(view.children) == 2
    with pytest.raises(AlreadyRandomised, match=f"family {fam} was already randomised"):
        randomisation.randomise(db, coord, fam)
    late = families.add_child(
        db, coord, fam, date(2024, 6, 1), "male", date(2024, 7, 1), today=TODAY
    )
    assert late.joined_after_randomisation
    (listed,) = randomisation.list_allocations(db, coord)
    assert late.trial_id in listed.children and listed.arm == view.arm
    assert families.get_family(db, actors["statistician"], fam).arm not in ("NIM", "SAU")


def test_minimisation_is_reproducible_from_the_seed_and_order(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    randomisation.setup(db, actors["admin"], SEED)
    plan = [(8,), (30,), (50, 20), (2,), (14,), (40,), (3, 5), (59,)]
    got = [
        randomisation.randomise(db, coord, ready_family(db, coord, "GLA", ages)).arm
        for ages in plan
    ]
    # the same generator, run in one go outside the database, gives the same arms
    definition = builtin_definition("nim")
    rng = np.random.default_rng(np.random.PCG64(SEED))
    counts: dict[tuple[str, str, str], int] = {}
    expected = []
    for ages in plan:
        levels = {
            "site": "GLA",
            "youngest_age_band": definition.factor("youngest_age_band").level_for(min(ages)),
            "family_size": "1" if len(ages) == 1 else "2+",
        }
        arm = minimise(counts, levels, ["NIM", "SAU"], {"NIM": 1, "SAU": 1}, 0.8, rng).arm
        for f, lv in levels.items():
            counts[(f, lv, arm)] = counts.get((f, lv, arm), 0) + 1
        expected.append(arm)
    assert got == expected


def test_scope_and_blinding(db: Database, actors: Actors) -> None:
    randomisation.setup(db, actors["admin"], SEED)
    fam = ready_family(db, actors["coord_gla"])
    with pytest.raises(PermissionDenied, match="at site 'GLA'"):
        randomisation.randomise(db, actors["coord_cro"], fam)
    for who in ("statistician", "research_gla", "datamanager"):
        with pytest.raises(PermissionDenied):
            randomisation.list_allocations(db, actors[who])
        with pytest.raises(PermissionDenied):
            randomisation.balance(db, actors[who])
    with pytest.raises(PermissionDenied):
        randomisation.setup(db, actors["coord_gla"], 1)
    randomisation.randomise(db, actors["coord_gla"], fam)
    assert randomisation.list_allocations(db, actors["coord_cro"]) == []
    assert len(randomisation.list_allocations(db, actors["unblinded_stat"])) == 1


def test_balance_counts_by_factor_level(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    randomisation.setup(db, actors["admin"], SEED)
    for ages in [(8,), (30,), (50,), (3,)]:
        randomisation.randomise(db, coord, ready_family(db, coord, "GLA", ages))
    rows = {(r.factor, r.level): r for r in randomisation.balance(db, actors["admin"])}
    assert sum(rows[("overall", "all")].counts.values()) == 4
    assert sum(rows[("site", "GLA")].counts.values()) == 4
    assert sum(rows[("site", "CRO")].counts.values()) == 0
    assert sum(rows[("youngest_age_band", "0-11m")].counts.values()) == 2


def test_setup_happens_once(db: Database, actors: Actors) -> None:
    randomisation.setup(db, actors["admin"], SEED)
    with pytest.raises(ValidationError, match="RND-011"):
        randomisation.setup(db, actors["admin"], SEED + 1)


@pytest.fixture
def block_trial(empty_url: str) -> tuple[Database, Actor]:
    setup.initialise(empty_url, builtin_definition("example"), "boss")
    db = Database(empty_url)
    boss = users.resolve_actor(db, "boss")
    users.add_user(db, boss, "lee_coord", "coordinator", ["LEE"])
    return db, boss


def test_block_method_follows_the_sealed_list(
    block_trial: tuple[Database, Actor], empty_url: str
) -> None:
    db, boss = block_trial
    try:
        slots, digest = randomisation.generate_list(db, boss, seed=77, per_stratum=12)
        assert slots >= 12 * 6 and len(digest) == 64
        coord = users.resolve_actor(db, "lee_coord")
        arms = []
        for _ in range(6):
            fam = ready_family(db, coord, "LEE", (20,))
            arms.append(randomisation.randomise(db, coord, fam, {"has_sibling_in_care": "no"}).arm)
        with raw(empty_url) as conn:
            sealed = [
                r[0]
                for r in conn.execute(
                    text(
                        "SELECT arm_code FROM allocation_list WHERE stratum = 'site=LEE|has_sibling_in_care=no' "
                        "ORDER BY position LIMIT 6"
                    )
                )
            ]
        assert arms == sealed
        check = randomisation.verify_list(db, boss)
        assert check.ok and check.allocations == 6
        with pytest.raises(ValidationError, match="has_sibling_in_care: not given"):
            randomisation.randomise(db, coord, ready_family(db, coord, "LEE", (20,)))
        # tampering with the sealed list stops randomisation and fails verification
        with raw(empty_url) as conn:
            drop_protection(conn, "allocation_list")
            conn.execute(
                text(
                    "UPDATE allocation_list SET arm_code = CASE arm_code WHEN 'INT' THEN 'CTL' ELSE 'INT' END "
                    "WHERE position = 7"
                )
            )
        assert not randomisation.verify_list(db, boss).ok
        with pytest.raises(ValidationError, match="RND-008"):
            randomisation.randomise(
                db, coord, ready_family(db, coord, "LEE", (20,)), {"has_sibling_in_care": "no"}
            )
    finally:
        db.dispose()


@pytest.mark.postgresql_only
def test_two_coordinators_at_the_same_moment_get_one_allocation(
    db: Database, actors: Actors
) -> None:
    randomisation.setup(db, actors["admin"], SEED)
    fam = ready_family(db, actors["coord_gla"])
    users.add_user(db, actors["admin"], "coord_gla2", "coordinator", ["GLA"])
    coordinators = [actors["coord_gla"], users.resolve_actor(db, "coord_gla2")]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(coordinators))

    def attempt(actor: Actor) -> None:
        barrier.wait()
        try:
            randomisation.randomise(db, actor, fam)
            outcomes.append("allocated")
        except AlreadyRandomised:
            outcomes.append("refused")

    threads = [threading.Thread(target=attempt, args=(a,)) for a in coordinators]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["allocated", "refused"]
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Allocation)) == 1


def test_allocations_are_refused_changes_by_the_code_too(db: Database, actors: Actors) -> None:
    from noim.db.audit import update_rows
    from noim.domain.exceptions import RecordProtected

    randomisation.setup(db, actors["admin"], SEED)
    randomisation.randomise(db, actors["coord_gla"], ready_family(db, actors["coord_gla"]))
    with pytest.raises(RecordProtected, match="written once"), db.write(actors["admin"]) as s:
        allocation = s.scalar(select(Allocation))
        assert allocation is not None
        allocation.arm_code = "SAU" if allocation.arm_code == "NIM" else "NIM"
    with pytest.raises(RecordProtected), db.write(actors["admin"], reason="x") as s:
        update_rows(s, Allocation, {1: {"stratum": "x"}})


@pytest.mark.sqlite_only
@settings(
    max_examples=examples(8),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.tuples(st.integers(1, 3), st.integers(0, 5)), min_size=1, max_size=6))
def test_siblings_share_an_arm_and_no_family_is_randomised_twice(
    db: Database, actors: Actors, plan: list[tuple[int, int]]
) -> None:
    """Any sequence of registrations and (repeated) randomisation attempts keeps both invariants."""
    coord = actors["coord_gla"]
    with db.read() as s:
        configured = s.scalar(text("SELECT COUNT(*) FROM randomisation_state"))
    if not configured:
        randomisation.setup(db, actors["admin"], SEED)
    fams = [ready_family(db, coord, "GLA", tuple(range(2, 2 + 10 * n, 10))) for n, _ in plan]
    for (_n, tries), fam in zip(plan, fams, strict=True):
        for attempt in range(tries):
            if attempt == 0:
                randomisation.randomise(db, coord, fam)
            else:
                with pytest.raises(AlreadyRandomised):
                    randomisation.randomise(db, coord, fam)
    with db.read() as s:
        per_family = s.execute(
            text("SELECT family_id, COUNT(*) FROM allocations GROUP BY family_id")
        ).all()
        assert all(n == 1 for _f, n in per_family)
        arms_per_family = s.execute(
            text(
                "SELECT c.family_id, COUNT(DISTINCT a.arm_code) FROM children c "
                "JOIN allocations a ON a.family_id = c.family_id GROUP BY c.family_id"
            )
        ).all()
        assert all(n == 1 for _f, n in arms_per_family)
