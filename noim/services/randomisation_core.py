"""The one implementation of allocating families, shared by ``randomise`` and ``randomise_many``.

``noim.services.randomisation.randomise`` (one family) and
``noim.services.randomisation_batch.randomise_many`` (many, all or none) are thin use
cases over this module: each opens its unit of work, locks the randomisation state
(``load_state``), finds its families and puts them through the gate
(``gate_problems`` over ``live_children``), and hands the families that passed to
``allocate``, which chooses their arms in order (minimisation: the marginal counts by
one aggregate query per factor, updated in memory, and the one generator advancing family
by family; sealed block list: each stratum's next unused slots), writes the allocations
and their audit rows in bulk, stores the generator state, schedules the children's
follow-up visits and returns the allocations as ``AllocationView``.  So a batch gets
exactly the allocations the same families would get randomised one by one.

Also here, for both and for the list commands: the sealed list's hash check and the
views of stored allocations.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections import defaultdict
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
from sqlalchemy import String, cast, func, select
from sqlalchemy.orm import Session

from noim.db.audit import insert_rows
from noim.db.base import utcnow
from noim.db.models import (
    Allocation,
    AllocationListEntry,
    Arm,
    ArmSiteLabel,
    Child,
    Consent,
    Family,
    MaskingKey,
    RandomisationState,
    Site,
)
from noim.domain.durations import months_between
from noim.domain.exceptions import NotInitialised, Problem, ValidationError
from noim.domain.randomisation import family_levels, minimise, stratum_key
from noim.domain.roles import Actor
from noim.domain.trialdef import TrialDefinition
from noim.services.visits import schedule_children

_CHUNK = 900  # ids per IN (...) list


@dataclass(frozen=True)
class AllocationView:
    family: str
    site: str
    arm: str
    arm_label: str
    sequence: int
    randomised_at: datetime
    stratum: str
    factors: dict[str, str]
    children: tuple[str, ...]


# --------------------------------------------------------------------------- state and generator


def load_state(s: Session, lock: bool = False) -> RandomisationState:
    """The randomisation state; ``lock`` holds it until the unit of work ends (one writer)."""
    stmt = select(RandomisationState).where(RandomisationState.id == 1)
    state = s.scalar(stmt.with_for_update() if lock else stmt)
    if state is None:
        raise NotInitialised(
            "randomisation is not set up: an administrator runs `noim randomisation setup --seed S` "
            "(minimisation) or `noim randomisation generate-list --seed S` (blocks)"
        )
    return state


def generator(state: Mapping[str, Any]) -> np.random.Generator:
    """The minimisation generator resumed from its stored (PCG64) state."""
    bit = np.random.PCG64()
    bit.state = dict(state)  # type: ignore[assignment]
    return np.random.Generator(bit)


def masked_code(key_hex: str, family_trial_id: str) -> str:
    """The allocation's masked code: HMAC-SHA256 of the family's trial ID under the trial's
    masking key (``masking_key``: secret, drawn at set-up, independent of the seed)."""
    digest = hmac.new(
        bytes.fromhex(key_hex), f"noim-mask:{family_trial_id}".encode(), hashlib.sha256
    ).digest()
    return base64.b32encode(digest).decode()[:8]


def masking_key(s: Session) -> str:
    """The trial's masking key (created with the randomisation state)."""
    key = s.scalar(select(MaskingKey.key_hex).where(MaskingKey.id == 1))
    if key is None:
        raise NotInitialised(
            "the masking key is missing: the randomisation was set up by an older noim; "
            "run `noim db upgrade`"
        )
    return str(key)


# --------------------------------------------------------------------------- the sealed list's hash


def list_hash(entries: list[tuple[str, int, int, int, str]]) -> str:
    """SHA-256 of the sealed list's (stratum, position, block, size, arm) entries, in order."""
    text = "\n".join(
        f"{st}|{pos}|{blk}|{size}|{arm}" for st, pos, blk, size, arm in sorted(entries)
    )
    return hashlib.sha256(text.encode()).hexdigest()


def stored_entries(s: Session) -> list[tuple[str, int, int, int, str]]:
    """The sealed list as stored."""
    rows = s.execute(
        select(
            AllocationListEntry.stratum,
            AllocationListEntry.position,
            AllocationListEntry.block_number,
            AllocationListEntry.block_size,
            AllocationListEntry.arm_code,
        )
    )
    return [(str(a), int(b), int(c), int(d), str(e)) for a, b, c, d, e in rows]


def check_list_hash(s: Session, state: RandomisationState) -> None:
    """RND-008: refuse to allocate from a sealed list changed since it was generated."""
    if state.list_sha256 is None or list_hash(stored_entries(s)) != state.list_sha256:
        raise ValidationError(
            Problem(
                "allocation_list",
                "sha256",
                state.list_sha256,
                "RND-008",
                "the sealed list unchanged since it was generated (its hash differs): "
                "randomisation is stopped; tell the trial statistician",
            )
        )


# --------------------------------------------------------------------------- the gate


def live_children(s: Session, family_ids: Sequence[int]) -> tuple[dict[int, list[Child]], set[int]]:
    """Live children by family id (child-number order) and the ids of those with a live consent.

    A few queries per 900 families, for one family or many.
    """
    children: dict[int, list[Child]] = defaultdict(list)
    child_ids: list[int] = []
    ids = sorted(set(family_ids))
    for start in range(0, len(ids), _CHUNK):
        for child in s.scalars(
            select(Child)
            .where(Child.family_id.in_(ids[start : start + _CHUNK]), Child.voided_at.is_(None))
            .order_by(Child.family_id, Child.child_number)
        ):
            children[child.family_id].append(child)
            child_ids.append(child.id)
    consented: set[int] = set()
    for start in range(0, len(child_ids), _CHUNK):
        consented.update(
            s.scalars(
                select(Consent.child_id).where(
                    Consent.child_id.in_(child_ids[start : start + _CHUNK]),
                    Consent.voided_at.is_(None),
                )
            )
        )
    return children, consented


def gate_problems(
    family: Family,
    site: Site,
    children: Sequence[Child],
    consented: Container[int],
    definition: TrialDefinition,
    declared: Mapping[str, str],
) -> tuple[dict[str, str], list[Problem]]:
    """The randomisation gate (RND-001 to RND-006) over loaded records: levels and problems.

    ``children`` are the family's live children in child-number order and ``consented``
    the ids of those with a live consent.  One implementation for ``randomise`` and
    ``randomise_many``.
    """
    record = f"family {family.trial_id}"
    problems: list[Problem] = []
    if family.voided_at is not None:
        problems.append(
            Problem(record, "voided_at", "voided", "RND-001", "a family that is not voided")
        )
    if site.requires_care_proceedings and family.in_care_proceedings is not True:
        problems.append(
            Problem(
                record,
                "in_care_proceedings",
                family.in_care_proceedings,
                "RND-002",
                f"a family in care proceedings (required at {site.code})",
            )
        )
    if not children:
        problems.append(Problem(record, "children", 0, "RND-003", "at least one child"))
    for c in children:
        if c.eligibility_status != "eligible":
            problems.append(
                Problem(
                    f"child {c.trial_id}",
                    "eligibility_status",
                    c.eligibility_status,
                    "RND-004",
                    "eligibility confirmed (noim child eligibility)",
                )
            )
        if c.id not in consented:
            problems.append(
                Problem(
                    f"child {c.trial_id}",
                    "consent",
                    None,
                    "RND-005",
                    "a recorded consent (noim consent add)",
                )
            )
    ages = [months_between(c.date_of_birth, c.entered_care_on) for c in children]
    levels, missing = family_levels(definition.factors, site.code, ages, declared)
    problems += [Problem(record, "stratification", None, "RND-006", m) for m in missing]
    return levels, problems


def gate_report(
    s: Session,
    families: Sequence[tuple[Family, Site]],
    definition: TrialDefinition,
    declared: Mapping[int, Mapping[str, str]] | None = None,
) -> dict[int, list[Problem]]:
    """What the gate (``gate_problems``) still misses for each of many families, by family id.

    Set-based: the families' live children and consents are loaded together
    (``live_children``), then each family goes through the same ``gate_problems`` that
    ``randomise`` applies, so the list says exactly what ``randomise`` would refuse with.
    ``declared`` gives declared factor levels by family id (none: a declared factor is
    reported as not given, as ``randomise`` would without it; ``asked_when_randomising``
    leaves out the factors the coordinator declares when randomising).
    """
    children, consented = live_children(s, [f.id for f, _site in families])
    return {
        family.id: gate_problems(
            family,
            site,
            children.get(family.id, []),
            consented,
            definition,
            (declared or {}).get(family.id, {}),
        )[1]
        for family, site in families
    }


def asked_when_randomising(definition: TrialDefinition) -> dict[str, str]:
    """A level of every declared factor: passed as ``declared`` to ``gate_problems``, the gate
    reports everything missing except the factors asked when randomising (a declared
    factor's level changes no other problem)."""
    return {f.code: f.levels[0].code for f in definition.factors if f.source == "declared"}


def back_dating(family_trial_id: str, randomised_at: datetime | None) -> list[Problem]:
    """RND-014: a back-dated randomisation time must be timezone-aware and not after now."""
    if randomised_at is None:
        return []
    now = utcnow()
    if randomised_at.tzinfo is not None and randomised_at <= now:
        return []
    return [
        Problem(
            f"family {family_trial_id}",
            "randomised_at",
            randomised_at.isoformat(),
            "RND-014",
            f"a timezone-aware time not after now ({now:%Y-%m-%d %H:%M} UTC)",
        )
    ]


# --------------------------------------------------------------------------- allocating


@dataclass(frozen=True)
class Ready:
    """A family that passed the gate: its levels, live children and (back-dated) time."""

    family: Family
    levels: dict[str, str]
    children: list[Child]
    at: datetime | None


def minimisation_counts(s: Session, factors: Sequence[str]) -> dict[tuple[str, str, str], int]:
    """Allocations by (factor, level, arm): one aggregate query over the combinations.

    The allocations are grouped by their factor levels as stored (a few dozen distinct
    combinations, whatever the number of families) and arm; each combination's levels are
    then read here.  One pass over the allocations (3 ms at 10,000 families), where one
    aggregate per factor, each extracting its level from every row, took 20 ms or more,
    under the write lock.
    """
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    combination = cast(Allocation.factors, String)
    rows = s.execute(
        select(combination, Allocation.arm_code, func.count()).group_by(
            combination, Allocation.arm_code
        )
    )
    for stored, arm_code, n in rows:
        levels = json.loads(stored) if stored else {}
        for f in factors:
            value = levels.get(f)
            if value is not None:
                counts[(f, str(value), str(arm_code))] += int(n)
    return counts


def allocate(
    s: Session,
    actor: Actor,
    state: RandomisationState,
    definition: TrialDefinition,
    ready: Sequence[Ready],
) -> list[AllocationView]:
    """Allocate ``ready`` families in order: arms, allocation rows, generator state, visits.

    ``state`` must be locked (``load_state(s, lock=True)``).  Raises ``ValidationError``
    (RND-008 a changed sealed list; RND-007 for every family whose stratum has no unused
    slot) before anything is written.  Returns the allocations in the order given.
    """
    if not ready:
        return []
    rd = definition.randomisation
    strata = [stratum_key(r.levels, rd.stratify_by) for r in ready]
    if state.method == "minimisation":
        choices = _minimise_all(s, state, definition, ready)
    else:
        choices = _next_slots(s, state, ready, strata)
    sequence = s.scalar(select(func.max(Allocation.sequence_number))) or 0
    key = masking_key(s)
    now = utcnow()
    planned: list[_Planned] = []
    rows: list[dict[str, object]] = []
    when: dict[int, date] = {}
    for r, stratum, (arm, position) in zip(ready, strata, choices, strict=True):
        sequence += 1
        p = _Planned(r.family.id, arm, sequence, r.at or now, stratum, r.levels)
        planned.append(p)
        rows.append(
            {
                "family_id": r.family.id,
                "arm_code": arm,
                "method": state.method,
                "stratum": stratum,
                "factors": r.levels,
                "sequence_number": sequence,
                "masked_code": masked_code(key, r.family.trial_id),
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
    return views(s, planned)


@dataclass
class _Planned:
    """The values of one allocation being written: a view is built from these or an ``Allocation``."""

    family_id: int
    arm_code: str
    sequence_number: int
    randomised_at: datetime
    stratum: str
    factors: dict[str, Any]


def _minimise_all(
    s: Session, state: RandomisationState, definition: TrialDefinition, ready: Sequence[Ready]
) -> list[tuple[str, int | None]]:
    """Minimisation arms, family by family; the generator state is stored after the last."""
    rd = definition.randomisation
    arms = [a.code for a in definition.arms]
    ratios = {a.code: a.ratio for a in definition.arms}
    counts = minimisation_counts(s, rd.factors)
    rng = generator(state.rng_state)
    out: list[tuple[str, int | None]] = []
    for r in ready:
        levels = {f: r.levels[f] for f in rd.factors}
        chosen = minimise(counts, levels, arms, ratios, rd.minimisation_probability, rng).arm
        for f, level in levels.items():
            counts[(f, level, chosen)] += 1
        out.append((chosen, None))
    state.rng_state = dict(rng.bit_generator.state)
    return out


def _next_slots(
    s: Session, state: RandomisationState, ready: Sequence[Ready], strata: Sequence[str]
) -> list[tuple[str, int | None]]:
    """Sealed-list arms and positions: each family takes its stratum's next unused slot."""
    check_list_hash(s, state)
    slots = _slots(s, strata)
    out: list[tuple[str, int | None]] = []
    problems: list[Problem] = []
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
        out.append((free[used + 1], used + 1))
    if problems:
        raise ValidationError(problems)
    return out


def _slots(s: Session, strata: Sequence[str]) -> dict[str, tuple[int, dict[int, str]]]:
    """Per stratum: the slots used so far, and the arms of the next slots of the sealed list.

    The arms are keyed by their position in the stratum's list; the next family takes
    slot ``used + 1``.  One aggregate query, then one query per stratum named.
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
    wanted: dict[str, int] = defaultdict(int)
    for stratum in strata:
        wanted[stratum] += 1
    out: dict[str, tuple[int, dict[int, str]]] = {}
    for stratum in needed:
        start = used.get(stratum, 0)
        free = {
            int(pos): str(arm)
            for pos, arm in s.execute(
                select(AllocationListEntry.position, AllocationListEntry.arm_code).where(
                    AllocationListEntry.stratum == stratum,
                    AllocationListEntry.position > start,
                    AllocationListEntry.position <= start + wanted[stratum],
                )
            )
        }
        out[stratum] = (start, free)
    return out


# --------------------------------------------------------------------------- views


def views(s: Session, allocations: Sequence[Allocation | _Planned]) -> list[AllocationView]:
    """The allocations as the user sees them (site, arm label, live children): set-based."""
    family_ids = [a.family_id for a in allocations]
    fams: dict[int, Family] = {}
    kids: dict[int, list[str]] = defaultdict(list)
    for start in range(0, len(family_ids), _CHUNK):
        chunk = family_ids[start : start + _CHUNK]
        fams.update((f.id, f) for f in s.scalars(select(Family).where(Family.id.in_(chunk))))
        for fid, tid in s.execute(
            select(Child.family_id, Child.trial_id)
            .where(Child.family_id.in_(chunk), Child.voided_at.is_(None))
            .order_by(Child.child_number)
        ):
            kids[fid].append(tid)
    sites = {site.id: site for site in s.scalars(select(Site))}
    labels = {(lab.arm_code, lab.site_id): lab.label for lab in s.scalars(select(ArmSiteLabel))}
    names = {arm.code: arm.name for arm in s.scalars(select(Arm))}
    out = []
    for a in allocations:
        fam = fams[a.family_id]
        out.append(
            AllocationView(
                family=fam.trial_id,
                site=sites[fam.site_id].code,
                arm=a.arm_code,
                arm_label=labels.get((a.arm_code, fam.site_id), names[a.arm_code]),
                sequence=a.sequence_number,
                randomised_at=a.randomised_at,
                stratum=a.stratum,
                factors=dict(a.factors),
                children=tuple(kids[a.family_id]),
            )
        )
    return out
