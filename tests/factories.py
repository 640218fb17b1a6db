"""Small helpers that build records through the services (never behind their back)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from noim.db.session import Database
from noim.domain.exceptions import ValidationError
from noim.domain.roles import Actor
from noim.services import families
from noim.services.families import FamilyView
from tests.conftest import Actors

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
