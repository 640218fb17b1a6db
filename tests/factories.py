"""Small helpers that build records through the services (never behind their back)."""

from __future__ import annotations

from datetime import date

from noim.db.session import Database
from noim.domain.roles import Actor
from noim.services import families
from noim.services.families import FamilyView

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
