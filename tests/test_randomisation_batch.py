"""``randomise_many``: the same allocations as one-by-one ``randomise``, every problem, nothing written."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from noim.db.models import Allocation, AuditLog, FollowUpVisit, RandomisationState
from noim.db.session import Database
from noim.domain.exceptions import ValidationError
from noim.domain.roles import Actor
from noim.domain.trialdef import builtin_definition
from noim.services import consent, randomisation, setup, users
from noim.services.randomisation_batch import randomise_many
from tests.conftest import Actors, PgServer, sqlite_copy
from tests.factories import family_with_children

SEED = 987654321
MASK_KEY = "ab" * 32


@pytest.fixture
def twins(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[str, Callable[[], str]]]:
    """A new, empty database, and a function making a copy of it (once it is idle)."""
    if backend == "sqlite":
        first, second = tmp_path / "one.db", tmp_path / "two.db"

        def sqlite_twin() -> str:
            sqlite_copy(first, second)
            return f"sqlite:///{second}"

        yield f"sqlite:///{first}", sqlite_twin
        return
    pg: PgServer = request.getfixturevalue("pg_server")
    names = [f"noim_t_{uuid.uuid4().hex[:12]}" for _ in range(2)]

    def pg_twin() -> str:
        return pg.create(names[1], template=names[0])

    yield pg.create(names[0]), pg_twin
    for n in names:
        if n in pg.created:
            pg.release(n)


def _families(
    db: Database, coord: dict[str, Actor], plan: list[tuple[str, tuple[int, ...]]]
) -> list[str]:
    """Register, find eligible and consent the planned families (site, children's ages)."""
    out = []
    for site, ages in plan:
        fam = family_with_children(db, coord[site], site, ages)
        for child in fam.children:
            consent.decide_eligibility(db, coord[site], child.trial_id, True, date(2024, 3, 20))
            consent.record_consent(
                db, coord[site], child.trial_id, "local_authority", "v3.1", date(2024, 3, 21)
            )
        out.append(fam.trial_id)
    return out


def _stored(db: Database) -> tuple[list[tuple[object, ...]], object, list[tuple[object, ...]]]:
    with db.read() as s:
        allocations = [
            tuple(r)
            for r in s.execute(
                select(
                    Allocation.family_id,
                    Allocation.arm_code,
                    Allocation.sequence_number,
                    Allocation.stratum,
                    Allocation.masked_code,
                    Allocation.list_position,
                    Allocation.randomised_at,
                ).order_by(Allocation.sequence_number)
            )
        ]
        state = s.scalar(select(RandomisationState.rng_state))
        visits = [
            tuple(r)
            for r in s.execute(
                select(
                    FollowUpVisit.child_id,
                    FollowUpVisit.timepoint_code,
                    FollowUpVisit.target_date,
                    FollowUpVisit.window_start,
                    FollowUpVisit.window_end,
                ).order_by(FollowUpVisit.child_id, FollowUpVisit.timepoint_code)
            )
        ]
    return allocations, state, visits


@pytest.mark.parametrize("seed", [1, 2024])
@pytest.mark.parametrize("method", ["minimisation", "blocks"])
def test_batch_gives_exactly_the_sequential_allocations(
    twins: tuple[str, Callable[[], str]], method: str, seed: int
) -> None:
    definition = builtin_definition("nim" if method == "minimisation" else "example")
    sites = [s.code for s in definition.sites]
    rng = np.random.default_rng(seed)
    n = 40
    plan = [
        (
            sites[int(rng.integers(len(sites)))],
            tuple(int(a) for a in rng.integers(0, 60, size=int(rng.integers(1, 4)))),
        )
        for _ in range(n)
    ]
    order = [int(i) for i in rng.permutation(n)]
    declared = [{"has_sibling_in_care": str(rng.choice(["yes", "no"]))} for _ in range(n)]
    start = datetime(2024, 4, 1, 9, tzinfo=UTC)
    times = [start + timedelta(days=k, hours=int(rng.integers(0, 8))) for k in range(n)]
    # one trial with the planned families registered, eligible and consented; then a copy
    # of it, so the one-by-one and the batch randomisations start from the same database
    first, make_twin = twins
    setup.initialise(first, definition, "boss")
    db = Database(first)
    try:
        boss = users.resolve_actor(db, "boss")
        for site in sites:
            users.add_user(db, boss, f"c_{site.lower()}", "coordinator", [site])
        # a fixed masking key (by default a database draws its own secret one)
        if method == "minimisation":
            randomisation.setup(db, boss, seed, mask_key=MASK_KEY)
        else:
            randomisation.generate_list(db, boss, seed=seed, per_stratum=30, mask_key=MASK_KEY)
        ids = _families(
            db, {site: users.resolve_actor(db, f"c_{site.lower()}") for site in sites}, plan
        )
    finally:
        db.dispose()  # idle: PostgreSQL copies from a database nobody is connected to
    decl = {ids[i]: declared[i] for i in range(n)} if method == "blocks" else {}
    second = make_twin()  # before either randomises
    results = []
    for k, url in enumerate([first, second]):
        db = Database(url)
        try:
            boss = users.resolve_actor(db, "boss")
            coord = {site: users.resolve_actor(db, f"c_{site.lower()}") for site in sites}
            if k == 0:  # one by one
                arms = [
                    randomisation.randomise(
                        db, coord[plan[i][0]], ids[i], decl.get(ids[i]), randomised_at=times[j]
                    ).arm
                    for j, i in enumerate(order)
                ]
            else:  # one batch, by an all-site actor
                views = randomise_many(
                    db,
                    _all_sites_coordinator(db, boss, sites),
                    [ids[i] for i in order],
                    declared=decl,
                    randomised_at=times,
                )
                arms = [v.arm for v in views]
                assert [v.family for v in views] == [ids[i] for i in order]
                assert [v.sequence for v in views] == list(range(1, n + 1))
            results.append((arms, _stored(db)))
            if method == "blocks":
                assert randomisation.verify_list(db, boss).ok
        finally:
            db.dispose()
    (arms_one, stored_one), (arms_batch, stored_batch) = results
    assert arms_batch == arms_one
    assert len(set(arms_one)) == 2
    assert stored_batch == stored_one  # allocations, generator state and visits


def _all_sites_coordinator(db: Database, boss: Actor, sites: list[str]) -> Actor:
    users.add_user(db, boss, "c_all", "coordinator", sites)
    return users.resolve_actor(db, "c_all")


def test_every_failing_family_is_reported_and_nothing_written(db: Database, actors: Actors) -> None:
    coord = {"GLA": actors["coord_gla"], "CRO": actors["coord_cro"]}
    randomisation.setup(db, actors["admin"], SEED)
    good = _families(db, coord, [("GLA", (10,)), ("GLA", (30, 50))])
    done = _families(db, coord, [("GLA", (5,))])[0]
    randomisation.randomise(db, coord["GLA"], done)
    no_consent = family_with_children(db, coord["GLA"], "GLA", (12,)).trial_id
    croydon = _families(db, coord, [("CRO", (8,))])[0]
    future = datetime.now(UTC) + timedelta(days=3)
    with pytest.raises(ValidationError) as caught:
        randomise_many(
            db,
            coord["GLA"],
            [*good, done, no_consent, croydon, good[0], "G-9999-G"],
            randomised_at=[datetime(2024, 4, 2, tzinfo=UTC)] * 6 + [future],
        )
    found = {(p.record, p.rule) for p in caught.value.problems}
    assert (f"family {done}", "RND-016") in found  # already randomised
    assert (f"family {good[0]}", "RND-016") in found  # named twice
    assert (f"family {croydon}", "RND-015") in found  # another site
    assert ("family G-9999-G", "RND-015") in found  # unknown
    assert ("family G-9999-G", "RND-014") in found  # in the future
    assert any(p.rule == "RND-005" for p in caught.value.problems)  # no consent
    assert all(f"family {g}" not in {r for r, _ in found} - {f"family {good[0]}"} for g in good[1:])
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Allocation)) == 1
    # the good ones go through, in one unit of work with a back-dating reason
    views = randomise_many(
        db, coord["GLA"], good, randomised_at=[datetime(2024, 4, 2, 10, tzinfo=UTC)] * 2
    )
    assert [v.family for v in views] == good and [v.sequence for v in views] == [2, 3]
    assert all(v.children for v in views)
    with db.read() as s:
        reasons = set(
            s.scalars(select(AuditLog.reason).where(AuditLog.table_name == "allocations"))
        )
        batch = {r for r in reasons if r}
        assert len(batch) == 1 and "2 randomisations back-dated" in batch.pop()
        visits = s.scalar(select(func.count()).select_from(FollowUpVisit))
        assert visits and visits > 3
    assert randomise_many(db, coord["GLA"], []) == []


def test_batch_needs_the_randomise_capability(db: Database, actors: Actors) -> None:
    from noim.domain.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        randomise_many(db, actors["research_gla"], ["G-0001"])


def test_randomise_batch_command(db: Database, actors: Actors, db_url: str, tmp_path: Path) -> None:
    from tests.test_cli import run

    coord = {"GLA": actors["coord_gla"], "CRO": actors["coord_cro"]}
    randomisation.setup(db, actors["admin"], SEED)
    ids = _families(db, coord, [("GLA", (10,)), ("GLA", (30, 40)), ("GLA", (3,))])
    f = tmp_path / "batch.csv"
    f.write_text("family_id\n" + "\n".join(ids[:2]) + "\n", encoding="utf-8")
    base = ("--database", db_url, "--user", "coord_gla")
    ok = run(*base, "randomise", "--batch", str(f), "--json")
    assert ok.exit_code == 0, ok.output
    out = json.loads(ok.output)
    assert [a["family"] for a in out] == ids[:2] and [a["sequence"] for a in out] == [1, 2]
    # all or none: the second file names a randomised family, so nothing is randomised
    f.write_text(f"family_id\n{ids[2]}\n{ids[0]}\n", encoding="utf-8")
    bad = run(*base, "randomise", "--batch", str(f))
    assert bad.exit_code == 1 and "RND-016" in bad.output + bad.stderr
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Allocation)) == 2
    f.write_text("family\nX\n", encoding="utf-8")
    header = run(*base, "randomise", "--batch", str(f))
    assert header.exit_code == 1 and "RND-017" in header.output + header.stderr
    both = run(*base, "randomise", ids[2], "--batch", str(f))
    assert both.exit_code != 0 and "one of them" in both.output + both.stderr
    single = run(*base, "randomise", ids[2])
    assert single.exit_code == 0 and "sequence 3" in single.output
