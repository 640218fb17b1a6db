"""Every example file in examples/ imports into the twelve registered families they name
(twice: the second time adds nothing), in the order a coordinator would load them."""

from __future__ import annotations

import contextlib
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from noim.config import Settings
from noim.db.session import Database
from noim.domain.durations import add_months
from noim.domain.exceptions import AlreadyInitialised
from noim.domain.trialdef import TrialDefinition, default_definition
from noim.services import consent, demo, families, randomisation, setup, users
from noim.services.imports import run_import

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
#: kind -> example file, in load order
ORDER = [
    ("families", "families.csv"),
    ("consents", "consents.csv"),
    ("assessments", "assessments-long.csv"),
    ("assessments", "assessments-wide.csv"),
    ("placements", "placements.csv"),
    ("legal-events", "legal-events.csv"),
    ("visits", "visits.csv"),
]


@pytest.mark.sqlite_only
def test_every_example_imports_into_the_demo(backend: str, tmp_path: Path) -> None:
    assert backend == "sqlite"
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    registered_families(url, default_definition())
    db = Database(url)
    try:
        admin = users.resolve_actor(db, demo.DEMO_ADMIN)
        assert sorted(p.name for p in EXAMPLES.glob("*.csv")) == sorted(f for _k, f in ORDER)
        for kind, name in ORDER:
            if kind == "visits":  # visits exist once a family is randomised
                randomisation.setup(db, admin, 20240501)
                consent.decide_eligibility(db, admin, "G-0001-01-O", True, date(2017, 2, 22))
                # the second child joined G-0001-Z through examples/families.csv
                consent.decide_eligibility(db, admin, "G-0001-02-P", True, date(2025, 8, 2))
                consent.record_consent(
                    db, admin, "G-0001-02-P", "local_authority", "3.1", date(2025, 8, 2)
                )
                randomisation.randomise(db, admin, "G-0001-Z")
            report = run_import(db, admin, kind, EXAMPLES / name)
            assert report.new_records > 0, f"{name}: {report.summary}"
            again = run_import(db, admin, kind, EXAMPLES / name)
            assert again.new_records == 0, f"{name} twice: {again.summary}"
    finally:
        db.dispose()


ENTRY_ROUTES = {
    "scotland": (["sc.cpo", "sc.s25", "sc.icso"], [0.5, 0.3, 0.2]),
    "england_wales": (["en.C1", "en.L2", "en.V2"], [0.6, 0.15, 0.25]),
}


def registered_families(url: str, definition: TrialDefinition, n_families: int = 12) -> None:
    """The twelve registered (not randomised) families the example files name (seed 2026)."""
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
