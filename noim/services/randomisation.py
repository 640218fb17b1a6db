"""Randomising families: set-up, once-only allocation, lists, balance, the sealed list.

Every allocation locks the randomisation state row first, so allocations are
strictly one at a time on every backend (two coordinators pressing the button
together get one allocation and one ``AlreadyRandomised``), and the stored
generator state always follows the order of allocations.  The gate and the
allocation itself are ``noim.services.randomisation_core`` (one implementation for
``randomise`` here and ``randomise_many`` in ``randomisation_batch``).
"""

from __future__ import annotations

import re
import secrets
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import product

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from noim.db.audit import insert_rows
from noim.db.base import utcnow
from noim.db.models import (
    Allocation,
    AllocationListEntry,
    Family,
    MaskingKey,
    RandomisationState,
)
from noim.db.session import Database
from noim.domain.exceptions import AlreadyRandomised, Problem, ValidationError
from noim.domain.randomisation import block_list, stratum_key
from noim.domain.roles import Actor, Capability
from noim.domain.trialdef import TrialDefinition
from noim.services.families import family_for
from noim.services.randomisation_core import (
    AllocationView,
    Ready,
    allocate,
    back_dating,
    gate_problems,
    list_hash,
    live_children,
    load_state,
    stored_entries,
    views,
)
from noim.services.setup import stored_definition

#: seeds below this can be found by trying them all: the seed replays every allocation
STRONG_SEED = 2**40


def weak_seed(seed: int) -> bool:
    """Whether ``seed`` is small enough to be guessed (a warning, not a refusal)."""
    return seed < STRONG_SEED


def setup(db: Database, actor: Actor, seed: int, *, mask_key: str | None = None) -> str:
    """Fix the seed of the minimisation generator (once, before the first allocation).

    The seed must stay secret (it replays every allocation): choose a large random one
    (``weak_seed`` says when it is not).  ``mask_key`` (64 hex digits) keys the families'
    masked codes; by default it is drawn from the operating system.  Only synthetic
    trials (``noim demo``) and tests pass one, to be reproducible.
    """
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
        _create_state(s, actor, definition, seed, mask_key)
        return definition.randomisation.method


def _create_state(
    s: Session, actor: Actor, definition: TrialDefinition, seed: int, mask_key: str | None
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
    if mask_key is None:
        # a secret, not a statistical draw: from the operating system, never from the seed
        mask_key = secrets.token_hex(32)
    elif not re.fullmatch(r"[0-9a-f]{64}", mask_key):
        raise ValidationError(
            Problem("randomisation", "mask_key", "(not shown)", "RND-018", "64 hex digits")
        )
    s.add(MaskingKey(id=1, key_hex=mask_key, created_at=utcnow()))
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
    The allocation itself is ``randomisation_core.allocate`` (shared with
    ``randomise_many``).
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
        state = load_state(s, lock=True)  # one allocation at a time, trial-wide
        family, site = family_for(s, actor, family_trial_id, "randomise")
        existing = s.scalar(select(Allocation).where(Allocation.family_id == family.id))
        if existing is not None:
            raise AlreadyRandomised(
                f"family {family.trial_id} was already randomised on {existing.randomised_at:%Y-%m-%d %H:%M} UTC "
                f"(sequence {existing.sequence_number}); a family is randomised once"
            )
        definition = stored_definition(s)
        children, consented = live_children(s, [family.id])
        kids = children.get(family.id, [])
        levels, problems = gate_problems(family, site, kids, consented, definition, declared or {})
        if problems:
            raise ValidationError(problems)
        ready = Ready(family, levels, kids, randomised_at or utcnow())
        (view,) = allocate(s, actor, state, definition, [ready])
        return view


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
        return views(s, list(s.scalars(stmt)))


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


def strata(definition: TrialDefinition) -> list[str]:
    """Every stratum of the block method, in a fixed order."""
    factors = [definition.factor(code) for code in definition.randomisation.stratify_by]
    return [
        stratum_key(
            dict(zip([f.code for f in factors], combo, strict=True)), [f.code for f in factors]
        )
        for combo in product(*[[lv.code for lv in f.levels] for f in factors])
    ]


def generate_list(
    db: Database, actor: Actor, seed: int, per_stratum: int, *, mask_key: str | None = None
) -> tuple[int, str]:
    """Generate and seal the block list (block method): returns (slots, SHA-256).

    ``seed`` and ``mask_key`` as for ``setup``."""
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
        state = _create_state(s, actor, definition, seed, mask_key)
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
        state.list_sha256 = list_hash(sealed)
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
        state = load_state(s)
        entries = stored_entries(s)
        problems = []
        if state.list_sha256 is None:
            problems.append("no sealed list: the trial does not use the block method")
        elif list_hash(entries) != state.list_sha256:
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
