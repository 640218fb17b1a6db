"""Randomising many families in one unit of work (``randomise_many``).

The allocations are exactly those the same families would get randomised one by one
with ``noim.services.randomisation.randomise`` in the given order: both hand the
families that passed the gate to ``randomisation_core.allocate`` (the randomisation
state locked once, the marginal counts or the used slots per stratum loaded once and
updated in memory, the one generator advancing family by family, allocations, audit
rows and follow-up visits written in bulk).  What is this module's own: the families
are found by trial ID in bulk, and every family that fails the gate
(``gate_problems``), is unknown, outside the actor's sites, already randomised or
named twice is reported (a ``Problem`` each) before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from noim.db.models import Allocation, Child, Family, Site
from noim.db.session import Database
from noim.domain import trial_ids
from noim.domain.exceptions import Problem, ValidationError
from noim.domain.roles import Actor, Capability
from noim.services.imports.reader import read_csv
from noim.services.randomisation_core import (
    AllocationView,
    Ready,
    allocate,
    back_dating,
    gate_problems,
    live_children,
    load_state,
)
from noim.services.setup import stored_definition

_CHUNK = 900


def randomise_many(
    db: Database,
    actor: Actor,
    families: Sequence[str],
    *,
    declared: Mapping[str, Mapping[str, str]] | None = None,
    randomised_at: Sequence[datetime] | None = None,
    reason: str | None = None,
) -> list[AllocationView]:
    """Randomise ``families`` (trial IDs) in the order given, in one unit of work.

    ``declared`` gives declared factor levels by family trial ID.  ``randomised_at`` (one
    time per family) back-dates the allocations as ``randomise(randomised_at=...)`` does:
    for synthetic trials and tests only (RND-014).  Raises ``ValidationError`` with a
    problem for every family that cannot be randomised (RND-001 to RND-007, RND-014,
    RND-015 unknown or out of scope, RND-016 already randomised or listed twice); then
    nothing is written.  Returns the allocations in the order given.
    """
    actor.require(Capability.RANDOMISE, "randomise families")
    ids = [t.strip().upper() for t in families]
    if randomised_at is not None and len(randomised_at) != len(ids):
        raise ValueError(f"{len(randomised_at)} randomisation times for {len(ids)} families")
    problems: list[Problem] = []
    if randomised_at is not None:
        for tid, at in zip(ids, randomised_at, strict=True):
            problems += back_dating(tid, at)
        if reason is None and ids:
            first, last = min(randomised_at), max(randomised_at)
            reason = (
                f"synthetic trial build: {len(ids)} randomisations back-dated to "
                f"{first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M} UTC"
            )
    if not ids:
        return []
    with db.write(actor, reason=reason or f"randomisation of {len(ids)} families") as s:
        state = load_state(s, lock=True)  # one batch at a time, trial-wide
        definition = stored_definition(s)
        loaded = _load(s, ids)
        seen: dict[str, int] = {}
        ready: list[Ready] = []
        for i, tid in enumerate(ids):
            if tid in seen:
                expected = f"each family once (it is also number {seen[tid] + 1} of the batch)"
                problems.append(_refused(tid, "RND-016", expected))
                continue
            seen[tid] = i
            found = loaded.families.get(tid)
            if found is None or not actor.can_see_site(found[1].id):
                where = ", ".join(sorted(actor.site_codes)) if not actor.all_sites else "any site"
                expected = (
                    "the trial ID of a registered family"
                    if found is None
                    else f"a family at your site(s) ({where}); {tid} is at {found[1].code}"
                )
                if found is None and not trial_ids.is_valid(tid):
                    expected = "a family trial ID with a valid check character"
                problems.append(_refused(tid, "RND-015", expected))
                continue
            family, site = found
            if family.id in loaded.allocated:
                expected = (
                    "a family not yet randomised (randomised on "
                    f"{loaded.allocated[family.id]:%Y-%m-%d %H:%M} UTC; a family is "
                    "randomised once)"
                )
                problems.append(_refused(tid, "RND-016", expected))
                continue
            children = loaded.children.get(family.id, [])
            levels, gate = gate_problems(
                family, site, children, loaded.consented, definition, (declared or {}).get(tid, {})
            )
            problems += gate
            time = randomised_at[i] if randomised_at is not None else None
            ready.append(Ready(family, levels, children, time))
        if problems:
            raise ValidationError(problems)
        return allocate(s, actor, state, definition, ready)


def _refused(tid: str, rule: str, expected: str) -> Problem:
    return Problem(f"family {tid}", "family_id", tid, rule, expected)


@dataclass
class _Loaded:
    families: dict[str, tuple[Family, Site]]
    #: randomised_at of the families already allocated, by family id
    allocated: dict[int, datetime]
    #: live children by family id, in child-number order
    children: dict[int, list[Child]]
    #: ids of children with a live consent
    consented: set[int]


def _load(s: Session, ids: Sequence[str]) -> _Loaded:
    """The families, their allocations, live children and consents: a few queries per 900."""
    families: dict[str, tuple[Family, Site]] = {}
    distinct = sorted(set(ids))
    for start in range(0, len(distinct), _CHUNK):
        for family, site in s.execute(
            select(Family, Site)
            .join(Site, Site.id == Family.site_id)
            .where(Family.trial_id.in_(distinct[start : start + _CHUNK]))
        ):
            families[family.trial_id] = (family, site)
    family_ids = sorted(f.id for f, _site in families.values())
    allocated: dict[int, datetime] = {}
    for start in range(0, len(family_ids), _CHUNK):
        for family_id, at in s.execute(
            select(Allocation.family_id, Allocation.randomised_at).where(
                Allocation.family_id.in_(family_ids[start : start + _CHUNK])
            )
        ):
            allocated[family_id] = at
    children, consented = live_children(s, family_ids)
    return _Loaded(families, allocated, children, consented)


def randomise_file(db: Database, actor: Actor, path: Path | str) -> list[AllocationView]:
    """Randomise the families listed in a CSV file, in file order (``noim randomise --batch``).

    The file has a ``family_id`` column and, for trials with declared stratification
    factors, one column per declared factor (e.g. ``has_sibling_in_care``) holding the
    family's level.  A file that cannot be read or lacks ``family_id`` is refused (RND-017).
    """
    try:
        data = read_csv(path)
    except (OSError, ValueError) as exc:
        raise ValidationError(Problem(str(path), "", "", "RND-017", str(exc))) from None
    if "family_id" not in data.header:
        raise ValidationError(
            Problem(
                data.source,
                "header",
                ",".join(data.header),
                "RND-017",
                "a family_id column (and one column per declared factor)",
            )
        )
    ids = [t.strip().upper() for t in data.column("family_id")]
    factors = [h for h in data.header if h and h != "family_id"]
    declared = {
        tid: {f: data.column(f)[i].strip() for f in factors if data.column(f)[i].strip()}
        for i, tid in enumerate(ids)
    }
    return randomise_many(db, actor, ids, declared=declared)
