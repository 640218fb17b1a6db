"""A synthetic NIM trial for demonstrations, built through the real services.

Every record goes through the same services, validation and audit trail as a
coordinator's entry.  All randomness comes from ``numpy.random.Generator``
seeded by the caller, so the same seed builds the same trial.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from noim.config import Settings
from noim.db.session import Database
from noim.domain.durations import add_months
from noim.domain.exceptions import AlreadyInitialised
from noim.domain.roles import Role
from noim.domain.trialdef import TrialDefinition
from noim.services import families, setup, users

DEMO_ADMIN = "admin"


#: (name, role, sites) of the demonstration users: one of each role, coordinators and researchers per site
def demo_users(definition: TrialDefinition) -> list[tuple[str, Role, tuple[str, ...]]]:
    out: list[tuple[str, Role, tuple[str, ...]]] = []
    for site in definition.sites:
        code = site.code.lower()
        out.append((f"coord_{code}", Role.COORDINATOR, (site.code,)))
        out.append((f"research_{code}", Role.RESEARCHER, (site.code,)))
    out += [
        ("datamanager", Role.DATA_MANAGER, ()),
        ("statistician", Role.STATISTICIAN, ()),
        ("unblinded_stat", Role.UNBLINDED_STATISTICIAN, ()),
        ("dmc_chair", Role.DMC_MEMBER, ()),
    ]
    return out


ENTRY_ROUTES = {
    "scotland": (["sc.cpo", "sc.s25", "sc.icso"], [0.5, 0.3, 0.2]),
    "england_wales": (["en.C1", "en.L2", "en.V2"], [0.6, 0.15, 0.25]),
}


@dataclass(frozen=True)
class DemoResult:
    database_url: str
    families: int
    children: int
    users: tuple[str, ...]


def build_demo(
    url: str, definition: TrialDefinition, n_families: int = 12, seed: int = 2026
) -> DemoResult:
    """Create (if needed) and fill a demonstration database at ``url``."""
    with contextlib.suppress(AlreadyInitialised):
        setup.initialise(url, definition, DEMO_ADMIN)
    db = Database(Settings.resolve(database=url).database_url)
    try:
        admin = users.resolve_actor(db, DEMO_ADMIN)
        existing = {u.name for u in users.list_users(db, admin)}
        for name, role, sites in demo_users(definition):
            if name not in existing:
                users.add_user(
                    db,
                    admin,
                    name,
                    role,
                    sites,
                    display_name=f"Demo {role.value.replace('_', ' ')}",
                )
        rng = np.random.default_rng(seed)
        site_weights = np.array([s.target_families or 1 for s in definition.sites], dtype=float)
        site_weights /= site_weights.sum()
        start = date(2017, 1, 9)
        n_children = 0
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
                n_children += 1
        return DemoResult(
            db.url, n_families, n_children, tuple(u.name for u in users.list_users(db, admin))
        )
    finally:
        db.dispose()
