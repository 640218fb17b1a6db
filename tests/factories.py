"""Small helpers that build records through the services (never behind their back)."""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from noim.config import Settings
from noim.db.session import Database
from noim.domain.exceptions import AlreadyInitialised, ValidationError
from noim.domain.roles import Actor
from noim.domain.trialdef import TrialDefinition
from noim.services import demo, families, setup, users
from noim.services.families import FamilyView
from tests.conftest import Actors, starting_from

TODAY = date(2026, 1, 1)


def family_with_children(
    db: Database,
    actor: Actor,
    site: str = "GLA",
    ages_months: tuple[int, ...] = (10,),
    entered: date = date(2024, 3, 1),
    route: str | None = None,
) -> FamilyView:
    """Register a family at ``site`` with one child per age (months at entry to care)."""
    from noim.domain.durations import add_months

    la = {"GLA": "GCC", "CRO": "CROY"}.get(site)
    fam = families.register_family(db, actor, site, la, True if site == "CRO" else None)
    for age in ages_months:
        families.add_child(
            db,
            actor,
            fam.trial_id,
            add_months(entered, -age),
            "female",
            entered,
            route,
            today=TODAY,
        )
    return families.get_family(db, actor, fam.trial_id)


#: the entry to care of ``trial_children`` (so a child of 10 months was born 2023-05-01)
ENTERED = date(2024, 3, 1)


def trial_children(
    db: Database, actors: Actors, site: str = "GLA", n: int = 1, entered: date = ENTERED
) -> list[str]:
    """Trial ids of ``n`` children (10 months old at entry) of a new family at ``site``."""
    actor = actors["coord_gla" if site == "GLA" else "coord_cro"]
    fam = family_with_children(db, actor, site, (10,) * n, entered=entered)
    return [c.trial_id for c in fam.children]


def count_rows(db: Database, model: type, *where: Any) -> int:
    """How many rows of ``model`` (matching ``where``) are stored."""
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def problem_fields(exc: pytest.ExceptionInfo[ValidationError]) -> set[tuple[str, str]]:
    """The (field, rule id) of every problem of a refused write."""
    return {(p.field, p.rule) for p in exc.value.problems}


def rule_ids(exc: pytest.ExceptionInfo[ValidationError]) -> set[str]:
    """The rule ids of every problem of a refused write."""
    return {p.rule for p in exc.value.problems}


def write_csv(path: Path, header: str, body: str) -> Path:
    """Write an import file: ``header`` line then ``body`` (UTF-8)."""
    path.write_text(header + "\n" + body, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- a small trial


@dataclass(frozen=True)
class SmallTrial:
    """What ``small_trial`` built: family trial ID -> arm code, and child IDs by family."""

    arms: dict[str, str]
    children: dict[str, list[str]]
    as_of: date
    #: children with no baseline SDQ (``small_trial(no_baseline_under_months=...)``)
    no_baseline: list[str] = field(default_factory=list)


def _randomised_on(day: date) -> datetime:
    """10:00 UTC on ``day``: the back-dated time of a test randomisation."""
    return datetime(day.year, day.month, day.day, 10, tzinfo=UTC)


def small_trial(
    db: Database,
    actors: Actors,
    n_families: int = 32,
    seed: int = 5,
    no_baseline_under_months: int | None = None,
) -> SmallTrial:
    """A seeded randomised trial built through the services, for the analysis scripts.

    ``n_families`` families at GLA and CRO (one or two children each, both sexes),
    randomised between 2023-01 and 2024-03; placements with moves, a first permanence
    decision for most children (every outcome, returns home with some re-entries),
    SDQ at baseline and 30 months (some 30-month ones missing), service use, two
    withdrawals from follow-up, a loss to follow-up, a post-randomisation exclusion, a
    major deviation and a screening log.  Built by the test users (``actors``).  With
    ``no_baseline_under_months``, children younger than that at entry to care get no baseline
    SDQ (babies have none), as the real trial (the same random draws, so the rest is alike).
    """
    import numpy as np

    from noim.domain.durations import add_months
    from noim.services import (
        assessments,
        consent,
        economics,
        exclusions,
        legal,
        placements,
        randomisation,
        safety,
        screening,
    )

    decided_by = date(2027, 12, 31)  # decisions after the censoring date are allowed
    admin, data_manager = actors["admin"], actors["datamanager"]
    coordinators = {"GLA": actors["coord_gla"], "CRO": actors["coord_cro"]}
    researchers = {"GLA": actors["research_gla"], "CRO": actors["research_cro"]}
    rng = np.random.default_rng(seed)
    randomisation.setup(db, admin, seed)
    economics.add_unit_cost(
        db, data_manager, "sw_hour", "Social worker", "hour", Decimal("45.50"), 2023
    )
    economics.add_unit_cost(
        db, data_manager, "night", "Foster night", "night", Decimal("30.00"), 2023
    )
    codes = {
        "GLA": {
            "return_home": "sc.return_home",
            "adoption": "sc.plan_adoption",
            "kinship": "sc.plan_kinship",
            "long_term_foster": "sc.plan_long_term_foster",
        },
        "CRO": {
            "return_home": "en.E4A",
            "adoption": "en.adm_adoption",
            "kinship": "en.E43",
            "long_term_foster": "en.plan_long_term_foster",
        },
    }
    outcomes = ["return_home", "adoption", "kinship", "long_term_foster"]
    arms: dict[str, str] = {}
    kids: dict[str, list[str]] = {}
    no_baseline: list[str] = []
    start = date(2023, 1, 9)
    for i in range(n_families):
        site = "GLA" if i % 2 == 0 else "CRO"
        coord, research = coordinators[site], researchers[site]
        entered = start + timedelta(days=13 * i)
        screened = entered + timedelta(days=5)
        entry = screening.add_entry(db, coord, site, screened, 1, True)
        if i % 8 == 3:  # an ineligible family and one that declined, screened the same day
            screening.add_entry(db, coord, site, screened, 2, False, "aged over 60 months")
            screening.add_entry(
                db, coord, site, screened, 1, True, declined=True, declined_reason="no time"
            )
        fam = families.register_family(
            db, coord, site, {"GLA": "GCC", "CRO": "CROY"}[site], True if site == "CRO" else None
        )
        screening.enrol(db, coord, entry.id, fam.trial_id)
        n_kids = 1 + int(rng.random() < 0.4)
        ages = []
        for _ in range(n_kids):
            age = int(rng.integers(1, 55))
            ages.append(age)
            sex = "female" if rng.random() < 0.5 else "male"
            families.add_child(
                db, coord, fam.trial_id, add_months(entered, -age), sex, entered, today=TODAY
            )
        ids = [c.trial_id for c in families.get_family(db, coord, fam.trial_id).children]
        age_of = dict(zip(ids, ages, strict=True))
        for child in ids:
            consent.decide_eligibility(db, coord, child, True, screened)
            consent.record_consent(db, coord, child, "local_authority", "v3", screened)
        r_day = entered + timedelta(days=20)
        arm = randomisation.randomise(
            db, coord, fam.trial_id, randomised_at=_randomised_on(r_day)
        ).arm
        arms[fam.trial_id], kids[fam.trial_id] = arm, ids
        treated = arm == sorted(set(arms.values()) | {arm})[0]
        for child in ids:
            placements.add_placement(db, coord, child, entered, "foster", today=TODAY)
            day = entered
            for _ in range(int(rng.poisson(0.8 if treated else 1.4))):
                day += timedelta(days=int(rng.integers(40, 200)))
                placements.move_child(db, coord, child, day, "foster", "disruption", today=TODAY)
            if rng.random() < 0.8:  # a first permanence decision
                outcome = outcomes[int(rng.choice(4, p=[0.35, 0.25, 0.2, 0.2]))]
                on = r_day + timedelta(days=int(rng.integers(30, 900 if treated else 1100)))
                legal.record_event(db, coord, child, codes[site][outcome], on, today=decided_by)
                if outcome == "return_home" and rng.random() < 0.4:
                    back = on + timedelta(days=int(rng.integers(20, 200)))
                    legal.record_event(db, coord, child, "any.reentry", back, today=decided_by)
            items = rng.integers(0, 3, size=25)
            base = dict(enumerate(items.tolist(), 1))
            if no_baseline_under_months is not None and age_of[child] < no_baseline_under_months:
                no_baseline.append(child)
            else:
                assessments.record_assessment(
                    db, research, child, "baseline", "sdq", r_day + timedelta(days=10), base
                )
            if rng.random() < 0.8:
                shift = rng.integers(-1, 1 if treated else 2, size=25)
                later = dict(enumerate(np.clip(items + shift, 0, 2).tolist(), 1))
                on = add_months(r_day, 30) + timedelta(days=int(rng.integers(-10, 10)))
                assessments.record_assessment(db, research, child, "30m", "sdq", on, later)
            for unit, size in (("sw_hour", 12), ("night", 60)):
                qty = Decimal(int(rng.integers(1, size)))
                end = r_day + timedelta(days=90)
                economics.add_service_use(db, coord, child, unit, r_day, end, qty)
        if i == 5:
            consent.record_withdrawal(
                db, coord, ids[0], r_day + timedelta(days=300), "follow_up", "carer", "moved"
            )
        if i == 8:
            consent.record_withdrawal(
                db, coord, ids[0], r_day + timedelta(days=100), "intervention", "carer", "no time"
            )
        if i == 9:
            safety.declare_lost(
                db,
                coord,
                ids[0],
                r_day + timedelta(days=500),
                "no contact",
                last_contact_on=r_day + timedelta(days=400),
            )
        if i == 10:
            exclusions.exclude_child(
                db, coord, ids[0], r_day + timedelta(days=30), "age", today=TODAY
            )
        if i == 11:
            safety.add_deviation(
                db, coord, fam.trial_id, r_day + timedelta(days=60), "visit", "major", "missed"
            )
    return SmallTrial(arms, kids, date(2026, 10, 31), no_baseline)


# --------------------------------------------------------------------------- the example files' families
def small_trial_start(
    n_families: int, *, fixture: str = "trial", **options: Any
) -> tuple[Any, Any, Any]:
    """``starting_from`` a ``small_trial`` of ``n_families`` families (and ``options``): the
    fixtures ``prebuilt``, ``db_url`` and ``fixture`` (the ``SmallTrial``) for a module whose
    tests asking for ``fixture`` start from a copy of it, built once per run and backend and
    shared by every module asking for the same trial::

        prebuilt, db_url, trial = small_trial_start(16)
    """
    build = functools.partial(small_trial, n_families=n_families, **options)
    key = "_".join(
        ["small_trial", str(n_families), *(f"{k}_{options[k]}" for k in sorted(options))]
    )
    return starting_from(key, build, fixture=fixture)


def frozen_small_trial(db: Database, actors: Actors) -> int:
    """A ``small_trial`` of six families and a data freeze of it ('DMC 1'): the freeze's id."""
    from noim.services import freezes

    small_trial(db, actors, n_families=6)
    return freezes.create_freeze(db, actors["datamanager"], label="DMC 1").id


ENTRY_ROUTES = {
    "scotland": (["sc.cpo", "sc.s25", "sc.icso"], [0.5, 0.3, 0.2]),
    "england_wales": (["en.C1", "en.L2", "en.V2"], [0.6, 0.15, 0.25]),
}


def registered_families(url: str, definition: TrialDefinition, n_families: int = 12) -> None:
    """The twelve registered (not randomised) families the example files name (seed 2026).

    The example files in examples/ were written for these families (the demonstration
    trial before it became a full synthetic trial), so their tests build them here.
    """
    from noim.domain.durations import add_months

    with contextlib.suppress(AlreadyInitialised):
        setup.initialise(url, definition, demo.DEMO_ADMIN)
    db = Database(Settings.resolve(database=url).database_url)
    try:
        admin = users.resolve_actor(db, demo.DEMO_ADMIN)
        for name, role, sites in demo.demo_users(definition):
            users.add_user(db, admin, name, role, sites)
        rng = np.random.default_rng(2026)
        site_weights = np.array([s.target_families or 1 for s in definition.sites], dtype=float)
        site_weights /= site_weights.sum()
        start = date(2017, 1, 9)
        for i in range(n_families):
            site = definition.sites[int(rng.choice(len(definition.sites), p=site_weights))]
            coordinator = users.resolve_actor(db, f"coord_{site.code.lower()}")
            la = site.local_authorities[int(rng.integers(len(site.local_authorities)))]
            fam = families.register_family(
                db,
                coordinator,
                site.code,
                la.code,
                True if site.requires_care_proceedings else None,
            )
            entered = start + timedelta(
                days=int(i * 1100 / max(n_families, 1)) + int(rng.integers(0, 14))
            )
            youngest_age = int(rng.integers(0, 60))
            k = 1 + int(rng.binomial(2, 0.2))
            routes, weights = ENTRY_ROUTES[site.jurisdiction]
            route = routes[int(rng.choice(len(routes), p=weights))]
            ages = sorted(
                {
                    youngest_age,
                    *(min(59, youngest_age + int(rng.integers(12, 40))) for _ in range(k - 1)),
                }
            )
            for age in ages:
                dob = add_months(entered, -age) - timedelta(days=int(rng.integers(0, 27)))
                sex = "female" if rng.random() < 0.5 else "male"
                families.add_child(
                    db, coordinator, fam.trial_id, dob, sex, entered, route, today=date(2026, 1, 1)
                )
    finally:
        db.dispose()
