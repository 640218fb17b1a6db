"""Allocation algorithms: reproducible from the seed, balanced, 1:1 in the long run."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noim.domain.randomisation import block_list, imbalance_if, minimise
from noim.domain.randomisation_sim import FactorSpec, simulate
from tests.conftest import examples

ARMS = ("NIM", "SAU")
ONE_TO_ONE = {"NIM": 1, "SAU": 1}
NIM_FACTORS = [
    FactorSpec("site", ("GLA", "CRO"), (250, 140)),
    FactorSpec("youngest_age_band", ("0-11m", "12-35m", "36-60m"), (0.45, 0.35, 0.2)),
    FactorSpec("family_size", ("1", "2+"), (0.75, 0.25)),
]

family_levels = st.lists(
    st.fixed_dictionaries(
        {
            "site": st.sampled_from(["GLA", "CRO"]),
            "age": st.sampled_from(["0-11m", "12-35m", "36-60m"]),
            "size": st.sampled_from(["1", "2+"]),
        }
    ),
    min_size=1,
    max_size=120,
)


def run_minimisation(families: list[dict[str, str]], seed: int, p: float = 0.8) -> list[str]:
    rng = np.random.default_rng(seed)
    counts: dict[tuple[str, str, str], int] = {}
    out = []
    for levels in families:
        arm = minimise(counts, levels, ARMS, ONE_TO_ONE, p, rng).arm
        for f, lv in levels.items():
            counts[(f, lv, arm)] = counts.get((f, lv, arm), 0) + 1
        out.append(arm)
    return out


@given(family_levels, st.integers(0, 2**32 - 1))
def test_same_seed_same_order_same_allocations(families: list[dict[str, str]], seed: int) -> None:
    assert run_minimisation(families, seed) == run_minimisation(families, seed)


def test_different_seed_different_allocations() -> None:
    families = [{"site": "GLA", "age": "0-11m", "size": "1"}] * 60
    assert run_minimisation(families, 1) != run_minimisation(families, 2)
    rng1, rng2 = np.random.default_rng(1), np.random.default_rng(2)
    assert block_list(40, ARMS, ONE_TO_ONE, (2, 4), rng1) != block_list(
        40, ARMS, ONE_TO_ONE, (2, 4), rng2
    )


@settings(max_examples=examples(50))
@given(family_levels, st.integers(0, 2**32 - 1))
def test_minimisation_keeps_every_marginal_imbalance_small(
    families: list[dict[str, str]], seed: int
) -> None:
    """Deterministic minimisation (p = 1) keeps each factor level's imbalance small.

    Pocock-Simon gives no hard bound per level; over 3,000 simulated trials of up
    to 300 families (three factors, as in NIM) the worst level imbalance seen was
    5, so 6 is the bound asserted here (simple randomisation of 120 families
    exceeds it about a third of the time).
    """
    arms = run_minimisation(families, seed, p=1.0)
    for factor in ("site", "age", "size"):
        for level in {f[factor] for f in families}:
            idx = [i for i, f in enumerate(families) if f[factor] == level]
            n_nim = sum(arms[i] == "NIM" for i in idx)
            assert abs(2 * n_nim - len(idx)) <= 6
    assert abs(2 * arms.count("NIM") - len(arms)) <= 6


@given(
    st.integers(1, 200),
    st.integers(0, 2**32 - 1),
    st.sampled_from([(2,), (2, 4), (4, 6), (2, 4, 6)]),
)
def test_blocks_balance_at_every_block_end(n: int, seed: int, sizes: tuple[int, ...]) -> None:
    allocations = block_list(n, ARMS, ONE_TO_ONE, sizes, np.random.default_rng(seed))
    assert len(allocations) >= n
    running = 0
    for k, (block, _size, arm) in enumerate(allocations):
        running += 1 if arm == "NIM" else -1
        assert abs(running) <= max(sizes) // 2  # never more than half the largest block
        last_in_block = k + 1 == len(allocations) or allocations[k + 1][0] != block
        if last_in_block:
            assert running == 0
    assert {b for b, _s, _a in allocations} == set(range(1, allocations[-1][0] + 1))


def test_unequal_ratio_blocks_hold_the_ratio() -> None:
    allocations = block_list(
        300, ("INT", "CTL"), {"INT": 2, "CTL": 1}, (3, 6), np.random.default_rng(7)
    )
    for block in {b for b, _s, _a in allocations}:
        arms = [a for b, _s, a in allocations if b == block]
        assert arms.count("INT") == 2 * arms.count("CTL")
    with pytest.raises(ValueError, match="not a multiple of the ratio total 3"):
        block_list(10, ("INT", "CTL"), {"INT": 2, "CTL": 1}, (2,), np.random.default_rng(7))


def test_imbalance_is_the_sum_of_ranges() -> None:
    counts = {("site", "GLA", "NIM"): 3, ("site", "GLA", "SAU"): 1, ("age", "a", "SAU"): 2}
    assert imbalance_if(counts, {"site": "GLA", "age": "a"}, ARMS, ONE_TO_ONE) == {
        "NIM": 3 + 1,
        "SAU": 1 + 3,
    }


@pytest.mark.parametrize("method", ["minimisation", "blocks"])
def test_allocation_ratio_is_one_to_one_over_many_trials(method: str) -> None:
    """Over 500 simulated trials of 200 families the share in NIM is 0.5 within 0.005.

    (Each trial's share has SD at most 0.035 under simple randomisation, so the
    mean of 500 has SD at most 0.0016; 0.005 is three such SDs.)
    """
    result = simulate(
        200, 500, method, NIM_FACTORS, ["site"], ARMS, ONE_TO_ONE, np.random.default_rng(11)
    )
    assert result.arm_share["NIM"] == pytest.approx(0.5, abs=0.005)
    assert sum(result.arm_share.values()) == pytest.approx(1.0)


def test_two_to_one_ratio_is_held() -> None:
    factors = [FactorSpec("site", ("LEE", "BRI", "CAR"), (1, 1, 1))]
    for method in ("minimisation", "blocks"):
        result = simulate(
            150,
            300,
            method,
            factors,
            ["site"],
            ("INT", "CTL"),
            {"INT": 2, "CTL": 1},
            np.random.default_rng(5),
            block_sizes=(3, 6),
        )
        assert result.arm_share["INT"] == pytest.approx(2 / 3, abs=0.01)


def test_simulation_reports_what_statisticians_compare() -> None:
    mini = simulate(
        400, 200, "minimisation", NIM_FACTORS, ["site"], ARMS, ONE_TO_ONE, np.random.default_rng(1)
    )
    blocks = simulate(
        400, 200, "blocks", NIM_FACTORS, ["site"], ARMS, ONE_TO_ONE, np.random.default_rng(1)
    )
    # blocks bound the within-stratum imbalance by half the largest block
    assert blocks.stratum_imbalance.max() <= 2
    # minimisation balances the other factors' margins far better than site-stratified blocks
    assert mini.marginal_imbalance.mean() < blocks.marginal_imbalance.mean() / 2
    for r in (mini, blocks):
        assert 0.5 < r.predictability < 1.0
        summary = r.summary()
        assert set(summary) >= {
            "overall_imbalance",
            "within_stratum_imbalance",
            "arm_share",
            "predictability",
        }
    with pytest.raises(ValueError, match="expected 'minimisation' or 'blocks'"):
        simulate(10, 2, "coin", NIM_FACTORS, ["site"], ARMS, ONE_TO_ONE, np.random.default_rng(1))
