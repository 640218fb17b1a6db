"""Randomising families: set-up, the gate, once-only allocation, lists, balance, the sealed list.

Every allocation locks the randomisation state row first, so allocations are
strictly one at a time on every backend (two coordinators pressing the button
together get one allocation and one ``AlreadyRandomised``), and the stored
generator state always follows the order of allocations.
"""

from __future__ import annotations

import base64
import hashlib
from collections import defaultdict
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import product
from typing import Any, Protocol

import numpy as np
from sqlalchemy import func, select
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
    RandomisationState,
    Site,
)
from noim.db.session import Database
from noim.domain.durations import months_between
from noim.domain.exceptions import AlreadyRandomised, NotInitialised, Problem, ValidationError
from noim.domain.randomisation import block_list, family_levels, minimise, stratum_key
from noim.domain.roles import Actor, Capability
from noim.domain.trialdef import TrialDefinition
from noim.services.families import family_for
from noim.services.setup import stored_definition
from noim.services.visits import schedule_children


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


def _rng(state: Mapping[str, Any]) -> np.random.Generator:
    bit = np.random.PCG64()
    bit.state = dict(state)  # type: ignore[assignment]
    return np.random.Generator(bit)


def _masked_code(seed: int, family_trial_id: str) -> str:
    digest = hashlib.sha256(f"noim-mask:{seed}:{family_trial_id}".encode()).digest()
    return base64.b32encode(digest).decode()[:8]


def _state(s: Session, lock: bool = False) -> RandomisationState:
    stmt = select(RandomisationState).where(RandomisationState.id == 1)
    state = s.scalar(stmt.with_for_update() if lock else stmt)
    if state is None:
        raise NotInitialised(
            "randomisation is not set up: an administrator runs `noim randomisation setup --seed S` "
            "(minimisation) or `noim randomisation generate-list --seed S` (blocks)"
        )
    return state


def setup(db: Database, actor: Actor, seed: int) -> str:
    """Fix the seed of the minimisation generator (once, before the first allocation)."""
    actor.require(Capability.ADMINISTER, "set up randomisation")
    with db.write(actor, reason="randomisation set-up") as s:
        definition = stored_definition(s)
        if definition.randomisation.method != "minimisation":
            raise ValidationError(
                Problem(
                    "randomisation",
                    "method",
                    definition.randomisation.method,
                    "RND-010",
                    "minimisation (the block method is set up by generate-list)",
                )
            )
        _create_state(s, actor, definition, seed)
        return definition.randomisation.method


def _create_state(
    s: Session, actor: Actor, definition: TrialDefinition, seed: int
) -> RandomisationState:
    if s.get(RandomisationState, 1) is not None:
        raise ValidationError(
            Problem(
                "randomisation",
                "seed",
                seed,
                "RND-011",
                "a trial whose randomisation is not yet set up (it is set up once)",
            )
        )
    if not 0 <= seed < 2**63:
        raise ValidationError(
            Problem("randomisation", "seed", seed, "RND-012", "a whole number from 0 to 2^63-1")
        )
    state = RandomisationState(
        id=1,
        method=definition.randomisation.method,
        seed=seed,
        rng_state=np.random.PCG64(seed).state,
        list_sha256=None,
        configured_at=utcnow(),
        configured_by_id=actor.user_id,
    )
    s.add(state)
    s.flush()
    return state


def _gate(
    s: Session, family: Family, site: Site, definition: TrialDefinition, declared: Mapping[str, str]
) -> tuple[dict[str, str], list[int]]:
    """Factor levels and eligible children of a family ready for randomisation; else every problem."""
    children = list(
        s.scalars(
            select(Child)
            .where(Child.family_id == family.id, Child.voided_at.is_(None))
            .order_by(Child.child_number)
        )
    )
    consented = set(
        s.scalars(
            select(Consent.child_id).where(
                Consent.child_id.in_([c.id for c in children]), Consent.voided_at.is_(None)
            )
        )
    )
    levels, problems = gate_problems(family, site, children, consented, definition, declared)
    if problems:
        raise ValidationError(problems)
    return levels, [c.id for c in children]


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


def minimisation_counts(s: Session, factors: Sequence[str]) -> dict[tuple[str, str, str], int]:
    """Allocations by (factor, level, arm): one aggregate query per factor, not a row per allocation."""
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    for f in factors:
        level = Allocation.factors[f].as_string()
        for value, arm_code, n in s.execute(
            select(level, Allocation.arm_code, func.count()).group_by(level, Allocation.arm_code)
        ):
            if value is not None:
                counts[(f, str(value), str(arm_code))] += int(n)
    return counts


def randomise(
    db: Database,
    actor: Actor,
    family_trial_id: str,
    declared: Mapping[str, str] | None = None,
    *,
    randomised_at: datetime | None = None,
) -> AllocationView:
    """Allocate a family (all its children) to an arm; refuses a second allocation.

    ``randomised_at`` back-dates the allocation: it exists ONLY for building synthetic
    trials (``noim demo``) and tests, never for a real trial (no command passes it).  It
    must be timezone-aware and not in the future (RND-014), and the audit row says the
    allocation was back-dated.  The allocation's visits are scheduled from that date.
    """
    actor.require(Capability.RANDOMISE, "randomise families")
    reason = None
    if randomised_at is not None:
        problems = back_dating(family_trial_id, randomised_at)
        if problems:
            raise ValidationError(problems)
        reason = (
            f"synthetic trial build: randomisation back-dated to {randomised_at:%Y-%m-%d %H:%M} UTC"
        )
    with db.write(actor, reason=reason) as s:
        state = _state(s, lock=True)  # one allocation at a time, trial-wide
        family, site = family_for(s, actor, family_trial_id, "randomise")
        existing = s.scalar(select(Allocation).where(Allocation.family_id == family.id))
        if existing is not None:
            raise AlreadyRandomised(
                f"family {family.trial_id} was already randomised on {existing.randomised_at:%Y-%m-%d %H:%M} UTC "
                f"(sequence {existing.sequence_number}); a family is randomised once"
            )
        definition = stored_definition(s)
        rd = definition.randomisation
        levels, _children = _gate(s, family, site, definition, declared or {})
        arms = [a.code for a in definition.arms]
        ratios = {a.code: a.ratio for a in definition.arms}
        stratum = stratum_key(levels, rd.stratify_by)
        list_position = None
        if state.method == "minimisation":
            counts = minimisation_counts(s, rd.factors)
            rng = _rng(state.rng_state)
            chosen = minimise(
                counts,
                {f: levels[f] for f in rd.factors},
                arms,
                ratios,
                rd.minimisation_probability,
                rng,
            ).arm
            state.rng_state = dict(rng.bit_generator.state)
        else:
            _check_list_hash(s, state)
            used = (
                s.scalar(
                    select(func.count())
                    .select_from(Allocation)
                    .where(Allocation.stratum == stratum)
                )
                or 0
            )
            entry = s.scalar(
                select(AllocationListEntry).where(
                    AllocationListEntry.stratum == stratum, AllocationListEntry.position == used + 1
                )
            )
            if entry is None:
                raise ValidationError(
                    Problem(
                        f"family {family.trial_id}",
                        "stratum",
                        stratum,
                        "RND-007",
                        "a stratum with an unused slot in the sealed list (generate a longer list)",
                    )
                )
            chosen, list_position = entry.arm_code, entry.position
        sequence = (s.scalar(select(func.max(Allocation.sequence_number))) or 0) + 1
        allocation = Allocation(
            family_id=family.id,
            arm_code=chosen,
            method=state.method,
            stratum=stratum,
            factors=levels,
            sequence_number=sequence,
            masked_code=_masked_code(state.seed, family.trial_id),
            randomised_at=randomised_at or utcnow(),
            randomised_by_id=actor.user_id,
            list_position=list_position,
        )
        s.add(allocation)
        s.flush()
        children = list(s.scalars(select(Child).where(Child.id.in_(_children))))
        schedule_children(s, definition, children, allocation.randomised_at.date())
        return _views(s, [allocation])[0]


class AllocationLike(Protocol):
    """What a view is built from: a stored ``Allocation`` or the values of one being written."""

    family_id: int
    arm_code: str
    sequence_number: int
    randomised_at: datetime
    stratum: str
    factors: dict[str, Any]


_CHUNK = 900  # ids per IN (...) list


def _views(s: Session, allocations: Sequence[AllocationLike]) -> list[AllocationView]:
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


def list_allocations(db: Database, actor: Actor) -> list[AllocationView]:
    """Every allocation the actor may see (unblinded roles; coordinators their own sites)."""
    actor.require(Capability.SEE_ARM, "see allocations")
    actor.require(Capability.READ_TRIAL_DATA, "see allocations")
    with db.read(actor) as s:
        stmt = (
            select(Allocation)
            .join(Family, Family.id == Allocation.family_id)
            .order_by(Allocation.sequence_number)
        )
        if not actor.all_sites:
            stmt = stmt.where(Family.site_id.in_(actor.site_ids))
        return _views(s, list(s.scalars(stmt)))


@dataclass(frozen=True)
class BalanceRow:
    factor: str
    level: str
    counts: dict[str, int]
    imbalance: float


def balance(db: Database, actor: Actor) -> list[BalanceRow]:
    """Families per arm overall, by site and by each factor level, with the (ratio-weighted) imbalance."""
    actor.require(Capability.SEE_ARM, "see the balance between arms")
    with db.read(actor) as s:
        definition = stored_definition(s)
        arms = [a.code for a in definition.arms]
        ratios = {a.code: a.ratio for a in definition.arms}
        rows = s.execute(select(Allocation.arm_code, Allocation.factors)).all()
    table: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(arms, 0))
    for arm, factors in rows:
        table[("overall", "all")][arm] += 1
        for f in definition.factors:
            if f.code in factors:
                table[(f.code, factors[f.code])][arm] += 1
    order = [("overall", "all")] + [
        (f.code, lv.code) for f in definition.factors for lv in f.levels
    ]
    out = []
    for key in order:
        counts = table.get(key, dict.fromkeys(arms, 0))
        weighted = [counts[a] / ratios[a] for a in arms]
        out.append(BalanceRow(key[0], key[1], counts, max(weighted) - min(weighted)))
    return out


# --------------------------------------------------------------------------- the sealed list (blocks)


def _list_hash(entries: list[tuple[str, int, int, int, str]]) -> str:
    text = "\n".join(
        f"{st}|{pos}|{blk}|{size}|{arm}" for st, pos, blk, size, arm in sorted(entries)
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _stored_entries(s: Session) -> list[tuple[str, int, int, int, str]]:
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


def _check_list_hash(s: Session, state: RandomisationState) -> None:
    if state.list_sha256 is None or _list_hash(_stored_entries(s)) != state.list_sha256:
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


def strata(definition: TrialDefinition) -> list[str]:
    """Every stratum of the block method, in a fixed order."""
    factors = [definition.factor(code) for code in definition.randomisation.stratify_by]
    return [
        stratum_key(
            dict(zip([f.code for f in factors], combo, strict=True)), [f.code for f in factors]
        )
        for combo in product(*[[lv.code for lv in f.levels] for f in factors])
    ]


def generate_list(db: Database, actor: Actor, seed: int, per_stratum: int) -> tuple[int, str]:
    """Generate and seal the block list (block method): returns (slots, SHA-256)."""
    actor.require(Capability.ADMINISTER, "generate the allocation list")
    if not 1 <= per_stratum <= 100_000:
        raise ValidationError(
            Problem("allocation_list", "per_stratum", per_stratum, "RND-013", "1 to 100000")
        )
    with db.write(actor, reason="sealed allocation list generated") as s:
        definition = stored_definition(s)
        rd = definition.randomisation
        if rd.method != "blocks":
            raise ValidationError(
                Problem(
                    "randomisation",
                    "method",
                    rd.method,
                    "RND-010",
                    "blocks (minimisation needs no list: use setup)",
                )
            )
        state = _create_state(s, actor, definition, seed)
        rng = np.random.default_rng(seed)
        arms = [a.code for a in definition.arms]
        ratios = {a.code: a.ratio for a in definition.arms}
        rows = []
        sealed: list[tuple[str, int, int, int, str]] = []
        for stratum in strata(definition):
            for position, (block, size, arm) in enumerate(
                block_list(per_stratum, arms, ratios, rd.block_sizes, rng), 1
            ):
                rows.append(
                    {
                        "stratum": stratum,
                        "position": position,
                        "block_number": block,
                        "block_size": size,
                        "arm_code": arm,
                    }
                )
                sealed.append((stratum, position, block, size, arm))
        insert_rows(s, AllocationListEntry, rows)
        state.list_sha256 = _list_hash(sealed)
        s.flush()
        return len(rows), state.list_sha256


@dataclass(frozen=True)
class ListCheck:
    ok: bool
    slots: int
    allocations: int
    problems: tuple[str, ...]


def verify_list(db: Database, actor: Actor) -> ListCheck:
    """Check the sealed list's hash and that every allocation took its stratum's next slot in order."""
    actor.require(Capability.ADMINISTER, "verify the allocation list")
    with db.read(actor) as s:
        state = _state(s)
        entries = _stored_entries(s)
        problems = []
        if state.list_sha256 is None:
            problems.append("no sealed list: the trial does not use the block method")
        elif _list_hash(entries) != state.list_sha256:
            problems.append("the list's hash differs from the one recorded when it was generated")
        slot = {(st, pos): arm for st, pos, _b, _z, arm in entries}
        allocations = s.execute(
            select(
                Allocation.sequence_number,
                Allocation.stratum,
                Allocation.list_position,
                Allocation.arm_code,
            ).order_by(Allocation.sequence_number)
        ).all()
        next_pos: dict[str, int] = defaultdict(lambda: 1)
        for seq, stratum, pos, arm in allocations:
            if pos != next_pos[stratum]:
                problems.append(
                    f"allocation {seq} ({stratum}) took slot {pos}, expected slot {next_pos[stratum]}"
                )
            elif slot.get((stratum, pos)) != arm:
                problems.append(
                    f"allocation {seq} ({stratum}, slot {pos}) does not match the sealed list"
                )
            next_pos[stratum] = (pos or 0) + 1
        return ListCheck(not problems, len(entries), len(allocations), tuple(problems))
