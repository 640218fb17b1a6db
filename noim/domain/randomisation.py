"""Allocation algorithms: Pocock–Simon minimisation and stratified permuted blocks.

Pure functions over counts and a caller-seeded ``numpy.random.Generator``; the
services keep the generator's state in the database so the sequence of
allocations is reproducible from the seed and the order of families.

Minimisation (Pocock & Simon, Biometrics 1975;31:103-115): for each arm ``a``,
the imbalance if the new family were given ``a`` is the sum over factors of the
range (max - min) across arms of ``(n[f, level, arm] + [arm == a]) / ratio[arm]``
at the family's level of that factor.  With probability ``p`` the arm with the
smallest imbalance is taken (ties broken at random, weighted by the ratio);
otherwise another arm, at random.

Blocks: for each stratum a list of blocks whose sizes are drawn at random from
the allowed sizes; each block holds the arms in ratio, randomly permuted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from noim.domain.trialdef import FactorDef

Counts = Mapping[tuple[str, str, str], int]  # (factor, level, arm) -> families so far


@dataclass(frozen=True)
class Choice:
    arm: str
    imbalance: dict[str, float]  # arm -> imbalance if chosen
    minimising: tuple[str, ...]  # the arm(s) with least imbalance
    took_minimising: bool


def imbalance_if(
    counts: Counts, levels: Mapping[str, str], arms: Sequence[str], ratios: Mapping[str, int]
) -> dict[str, float]:
    """Total range imbalance over factors if the new family joined each arm."""
    out: dict[str, float] = {}
    for candidate in arms:
        total = 0.0
        for factor, level in levels.items():
            weighted = [
                (counts.get((factor, level, a), 0) + (1 if a == candidate else 0)) / ratios[a]
                for a in arms
            ]
            total += max(weighted) - min(weighted)
        out[candidate] = total
    return out


def minimise(
    counts: Counts,
    levels: Mapping[str, str],
    arms: Sequence[str],
    ratios: Mapping[str, int],
    p_minimising: float,
    rng: np.random.Generator,
) -> Choice:
    """Choose an arm for a new family with factor ``levels`` (see the module docstring)."""
    imb = imbalance_if(counts, levels, arms, ratios)
    best = min(imb.values())
    minimising = tuple(a for a in arms if imb[a] == best)
    others = tuple(a for a in arms if a not in minimising)
    u = float(rng.random())
    if not others or u < p_minimising:
        pool, took = minimising, True
    else:
        pool, took = others, False
    weights = np.array([ratios[a] for a in pool], dtype=float)
    arm = pool[int(rng.choice(len(pool), p=weights / weights.sum()))] if len(pool) > 1 else pool[0]
    return Choice(arm=arm, imbalance=imb, minimising=minimising, took_minimising=took)


def block_list(
    n: int,
    arms: Sequence[str],
    ratios: Mapping[str, int],
    block_sizes: Sequence[int],
    rng: np.random.Generator,
) -> list[tuple[int, int, str]]:
    """At least ``n`` allocations for one stratum as (block number, block size, arm), in order."""
    unit = sum(ratios[a] for a in arms)
    for size in block_sizes:
        if size % unit:
            raise ValueError(f"block size {size} is not a multiple of the ratio total {unit}")
    out: list[tuple[int, int, str]] = []
    block = 0
    while len(out) < n:
        block += 1
        size = int(block_sizes[int(rng.integers(len(block_sizes)))])
        content = [a for a in arms for _ in range(ratios[a] * size // unit)]
        order = rng.permutation(len(content))
        out += [(block, size, content[i]) for i in order]
    return out


def stratum_key(levels: Mapping[str, str], stratify_by: Sequence[str]) -> str:
    """The stratum label, e.g. ``site=GLA`` or ``site=LEE|has_sibling_in_care=yes``."""
    return "|".join(f"{f}={levels[f]}" for f in stratify_by)


def family_levels(
    factors: Sequence[FactorDef],
    site_code: str,
    ages_at_entry_months: Sequence[int],
    declared: Mapping[str, str],
) -> tuple[dict[str, str], list[str]]:
    """Each factor's level for a family, and what is missing (as readable messages)."""
    levels: dict[str, str] = {}
    missing: list[str] = []
    for f in factors:
        if f.source == "site":
            levels[f.code] = site_code
        elif f.source == "youngest_age_months_at_entry":
            if not ages_at_entry_months:
                missing.append(f"factor {f.code}: no eligible child to take the age from")
            else:
                try:
                    levels[f.code] = f.level_for(min(ages_at_entry_months))
                except ValueError as exc:
                    missing.append(str(exc))
        elif f.source == "children_in_family":
            levels[f.code] = f.level_for(len(ages_at_entry_months))
        else:
            value = declared.get(f.code)
            codes = [lv.code for lv in f.levels]
            if value is None:
                missing.append(f"factor {f.code}: not given; expected one of {', '.join(codes)}")
            elif value not in codes:
                missing.append(
                    f"factor {f.code}: got {value!r}; expected one of {', '.join(codes)}"
                )
            else:
                levels[f.code] = value
    return levels, missing
