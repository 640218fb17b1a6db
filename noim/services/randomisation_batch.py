"""Randomising many families in one unit of work (``randomise_many``).

The allocations are exactly those the same families would get randomised one by one
with ``noim.services.randomisation.randomise`` in the given order: the randomisation
state is locked once, the marginal counts (minimisation) or the used slots per stratum
(sealed block list) are loaded once and updated in memory after each allocation, and
the one generator state advances family by family as it would across single
allocations.  The gate (``gate_problems``) is the single-family one; every family that
fails it, is unknown, outside the actor's sites, already randomised or named twice is
reported (a ``Problem`` each) and then nothing is written.  Allocations, their audit
rows and the children's follow-up visits are written in bulk.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from noim.db.audit import insert_rows
from noim.db.base import utcnow
from noim.db.models import Allocation, AllocationListEntry, Child, Consent, Family, Site
from noim.db.session import Database
from noim.domain import trial_ids
from noim.domain.exceptions import Problem, ValidationError
from noim.domain.randomisation import minimise, stratum_key
from noim.domain.roles import Actor, Capability
from noim.services.imports.reader import read_csv
from noim.services.randomisation import (
    AllocationView,
    _check_list_hash,
    _masked_code,
    _rng,
    _state,
    _views,
    back_dating,
    gate_problems,
    minimisation_counts,
)
from noim.services.setup import stored_definition
from noim.services.visits import schedule_children

_CHUNK = 900


@dataclass
class _Planned:
    """The values of one allocation about to be written (what a view is built from)."""

    family_id: int
    arm_code: str
    sequence_number: int
    randomised_at: datetime
    stratum: str
    factors: dict[str, Any]


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
        state = _state(s, lock=True)  # one batch at a time, trial-wide
        definition = stored_definition(s)
        rd = definition.randomisation
        loaded = _load(s, ids)
        seen: dict[str, int] = {}
        ready: list[_Ready] = []
        for i, tid in enumerate(ids):
            record = f"family {tid}"
            if tid in seen:
                problems.append(
                    Problem(
                        record,
                        "family_id",
                        tid,
                        "RND-016",
                        f"each family once (it is also number {seen[tid] + 1} of the batch)",
                    )
                )
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
                problems.append(Problem(record, "family_id", tid, "RND-015", expected))
                continue
            family, site = found
            if family.id in loaded.allocated:
                problems.append(
                    Problem(
                        record,
                        "family_id",
                        tid,
                        "RND-016",
                        "a family not yet randomised (randomised on "
                        f"{loaded.allocated[family.id]:%Y-%m-%d %H:%M} UTC; a family is "
                        "randomised once)",
                    )
                )
                continue
            children = loaded.children.get(family.id, [])
            levels, gate = gate_problems(
                family, site, children, loaded.consented, definition, (declared or {}).get(tid, {})
            )
            problems += gate
            time = randomised_at[i] if randomised_at is not None else None
            ready.append(_Ready(family, levels, children, time))
        if problems:
            raise ValidationError(problems)

        arms = [a.code for a in definition.arms]
        ratios = {a.code: a.ratio for a in definition.arms}
        sequence = s.scalar(select(func.max(Allocation.sequence_number))) or 0
        now = utcnow()
        planned: list[_Planned] = []
        list_positions: list[int | None] = []
        if state.method == "minimisation":
            counts = minimisation_counts(s, rd.factors)
            rng = _rng(state.rng_state)
            for r in ready:
                levels = r.levels
                chosen = minimise(
                    counts,
                    {f: levels[f] for f in rd.factors},
                    arms,
                    ratios,
                    rd.minimisation_probability,
                    rng,
                ).arm
                for f in rd.factors:
                    counts[(f, levels[f], chosen)] += 1
                planned.append(_Planned(r.family.id, chosen, 0, r.at or now, "", levels))
                list_positions.append(None)
            state.rng_state = dict(rng.bit_generator.state)
        else:
            _check_list_hash(s, state)
            strata = [stratum_key(r.levels, rd.stratify_by) for r in ready]
            slots = _slots(s, strata)
            for r, stratum in zip(ready, strata, strict=True):
                used, free = slots[stratum]
                if used + 1 not in free:
                    problems.append(
                        Problem(
                            f"family {r.family.trial_id}",
                            "stratum",
                            stratum,
                            "RND-007",
                            "a stratum with an unused slot in the sealed list (generate a longer list)",
                        )
                    )
                    continue
                slots[stratum] = (used + 1, free)
                planned.append(_Planned(r.family.id, free[used + 1], 0, r.at or now, "", r.levels))
                list_positions.append(used + 1)
            if problems:
                raise ValidationError(problems)

        rows: list[dict[str, object]] = []
        when: dict[int, date] = {}
        for r, p, position in zip(ready, planned, list_positions, strict=True):
            sequence += 1
            p.sequence_number = sequence
            p.stratum = stratum_key(r.levels, rd.stratify_by)
            rows.append(
                {
                    "family_id": r.family.id,
                    "arm_code": p.arm_code,
                    "method": state.method,
                    "stratum": p.stratum,
                    "factors": r.levels,
                    "sequence_number": sequence,
                    "masked_code": _masked_code(state.seed, r.family.trial_id),
                    "randomised_at": p.randomised_at,
                    "randomised_by_id": actor.user_id,
                    "list_position": position,
                }
            )
            for c in r.children:
                when[c.id] = p.randomised_at.date()
        insert_rows(s, Allocation, rows)
        s.flush()
        schedule_children(s, definition, [c for r in ready for c in r.children], when)
        return _views(s, planned)


@dataclass(frozen=True)
class _Ready:
    """A family that passed the gate, with its levels, live children and time."""

    family: Family
    levels: dict[str, str]
    children: list[Child]
    at: datetime | None


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
    out = _Loaded({}, {}, defaultdict(list), set())
    distinct = sorted(set(ids))
    for start in range(0, len(distinct), _CHUNK):
        chunk = distinct[start : start + _CHUNK]
        for family, site in s.execute(
            select(Family, Site)
            .join(Site, Site.id == Family.site_id)
            .where(Family.trial_id.in_(chunk))
        ):
            out.families[family.trial_id] = (family, site)
    family_ids = sorted(f.id for f, _site in out.families.values())
    child_ids: list[int] = []
    for start in range(0, len(family_ids), _CHUNK):
        chunk_ids = family_ids[start : start + _CHUNK]
        for family_id, at in s.execute(
            select(Allocation.family_id, Allocation.randomised_at).where(
                Allocation.family_id.in_(chunk_ids)
            )
        ):
            out.allocated[family_id] = at
        for child in s.scalars(
            select(Child)
            .where(Child.family_id.in_(chunk_ids), Child.voided_at.is_(None))
            .order_by(Child.family_id, Child.child_number)
        ):
            out.children[child.family_id].append(child)
            child_ids.append(child.id)
    for start in range(0, len(child_ids), _CHUNK):
        out.consented.update(
            s.scalars(
                select(Consent.child_id).where(
                    Consent.child_id.in_(child_ids[start : start + _CHUNK]),
                    Consent.voided_at.is_(None),
                )
            )
        )
    return out


def _slots(s: Session, strata: Sequence[str]) -> dict[str, tuple[int, dict[int, str]]]:
    """Per stratum: the slots used so far, and the arms of the next slots of the sealed list.

    The arms are keyed by their position in the stratum's list: ``randomise`` takes slot
    ``used + 1``.
    """
    needed = sorted(set(strata))
    used = {
        str(stratum): int(n)
        for stratum, n in s.execute(
            select(Allocation.stratum, func.count())
            .where(Allocation.stratum.in_(needed))
            .group_by(Allocation.stratum)
        )
    }
    out: dict[str, tuple[int, dict[int, str]]] = {}
    for stratum in needed:
        n = sum(1 for st in strata if st == stratum)
        start = int(used.get(stratum, 0))
        free = {
            int(pos): str(arm)
            for pos, arm in s.execute(
                select(AllocationListEntry.position, AllocationListEntry.arm_code).where(
                    AllocationListEntry.stratum == stratum,
                    AllocationListEntry.position > start,
                    AllocationListEntry.position <= start + n,
                )
            )
        }
        out[stratum] = (start, free)
    return out


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
