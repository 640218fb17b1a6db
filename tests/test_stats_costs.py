"""stats.cost_difference: seeded bootstrap, coverage of a known difference, agreement with
the normal-theory interval at large n_boot, the cluster bootstrap and the refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from noim import stats
from noim.stats import StatsInputError


def costs(
    seed: int = 3, n: int = 2000, families: int = 1200, difference: float = 500.0
) -> pd.DataFrame:
    """Gamma costs (mean 2000 in control) plus ``difference`` in nim; arm by family;
    a shared family cost makes children of one family correlated."""
    rng = np.random.default_rng(seed)
    fam = rng.integers(0, families, n)
    arm = np.where(fam % 2 == 0, "control", "nim")
    shared = rng.gamma(1.0, 400.0, families)[fam]
    cost = rng.gamma(2.0, 800.0, n) + shared + difference * (arm == "nim")
    return pd.DataFrame({"family": fam, "arm": arm, "cost": cost})


def test_means_and_difference_are_exact() -> None:
    df = pd.DataFrame({"arm": ["a", "a", "b", "b", "b"], "cost": [10.0, 20.0, 30.0, 40.0, 50.0]})
    r = stats.cost_difference(df, "cost", "arm", n_boot=200, rng=1)
    assert r.means.to_dict() == {"a": 15.0, "b": 40.0}
    assert r.estimate == 25.0
    # normal-theory interval: d +- z sqrt(s_a^2/n_a + s_b^2/n_b)
    half = 1.959963984540054 * np.sqrt(50.0 / 2 + 100.0 / 3)
    assert r.ci_normal == pytest.approx((25.0 - half, 25.0 + half), rel=1e-12)
    assert list(r.summary.index) == ["mean[a]", "mean[b]", "arm[T.b]"]
    assert r.summary.at["arm[T.b]", "n"] == 5
    assert "bootstrap" in str(r) and r.replicates.shape == (200,)


def test_seeded_reproducibility() -> None:
    df = costs()
    a = stats.cost_difference(df, "cost", "arm", cluster="family", n_boot=500, rng=42)
    b = stats.cost_difference(
        df, "cost", "arm", cluster="family", n_boot=500, rng=np.random.default_rng(42)
    )
    c = stats.cost_difference(df, "cost", "arm", cluster="family", n_boot=500, rng=43)
    assert a.ci == b.ci and a.ci_bca == b.ci_bca and np.array_equal(a.replicates, b.replicates)
    assert a.ci != c.ci


def test_interval_covers_the_known_difference() -> None:
    df = costs(difference=500.0)
    r = stats.cost_difference(df, "cost", "arm", cluster="family", n_boot=2000, rng=7)
    assert r.ci[0] < 500.0 < r.ci[1]
    assert r.ci_bca[0] < 500.0 < r.ci_bca[1]
    assert r.ci[0] < r.estimate < r.ci[1]


def test_percentile_interval_approaches_normal_theory() -> None:
    # With n = 2000 the sampling distribution of the difference is close to normal, so with
    # 20000 replicates the percentile limits agree with d +- 1.96 SE to a few percent of the
    # half-width (Monte Carlo error of a 2.5% quantile at B = 20000 is ~1% of the SE).
    df = costs()
    r = stats.cost_difference(df, "cost", "arm", n_boot=20000, rng=11)
    half = (r.ci_normal[1] - r.ci_normal[0]) / 2
    assert r.ci[0] == pytest.approx(r.ci_normal[0], abs=0.05 * half)
    assert r.ci[1] == pytest.approx(r.ci_normal[1], abs=0.05 * half)
    assert r.se == pytest.approx(half / 1.959963984540054, rel=0.03)
    clustered = stats.cost_difference(df, "cost", "arm", cluster="family", n_boot=20000, rng=11)
    chalf = (clustered.ci_normal[1] - clustered.ci_normal[0]) / 2
    assert clustered.ci[0] == pytest.approx(clustered.ci_normal[0], abs=0.05 * chalf)
    assert clustered.ci[1] == pytest.approx(clustered.ci_normal[1], abs=0.05 * chalf)


def test_cluster_bootstrap_resamples_whole_families() -> None:
    # Two families per arm, each family's children identical: resampling families can only
    # give the family means, so every replicate difference is one of a few values.
    df = pd.DataFrame(
        {
            "family": [1, 1, 1, 2, 3, 3, 4],
            "arm": ["a", "a", "a", "a", "b", "b", "b"],
            "cost": [10.0, 10.0, 10.0, 30.0, 100.0, 100.0, 200.0],
        }
    )
    r = stats.cost_difference(df, "cost", "arm", cluster="family", n_boot=400, rng=1)
    arm_a = {10.0, 30.0, (30.0 + 30.0) / 4}  # {1,1}, {2,2}, {1,2} child-weighted
    arm_b = {100.0, 200.0, 400.0 / 3}
    possible = {b - a for a in arm_a for b in arm_b}
    assert set(np.round(r.replicates, 9)) <= set(np.round(list(possible), 9))
    assert r.summary.at["arm[T.b]", "units"] == 4


def test_refusals() -> None:
    df = costs()
    with pytest.raises(StatsInputError, match="expected at least 2"):
        stats.cost_difference(df[df["arm"] == "nim"], "cost", "arm", rng=1)
    with pytest.raises(StatsInputError, match="expected values of at least 0"):
        stats.cost_difference(df.assign(cost=df["cost"] - 5000), "cost", "arm", rng=1)
    with pytest.raises(StatsInputError, match="missing value"):
        stats.cost_difference(df.assign(cost=df["cost"].where(df.index > 0)), "cost", "arm", rng=1)
    with pytest.raises(StatsInputError, match="int seed"):
        stats.cost_difference(df, "cost", "arm")
    one = df.assign(family=np.where(df["arm"] == "nim", -1, df["family"]))
    with pytest.raises(
        StatsInputError, match=r"has \d+ in 'control', 1 in 'nim' \(clusters per level of 'arm'\)"
    ):
        stats.cost_difference(one, "cost", "arm", cluster="family", rng=1)
    with pytest.raises(StatsInputError, match="at least 100 replicates"):
        stats.cost_difference(df, "cost", "arm", n_boot=10, rng=1)


def test_constant_costs_give_a_degenerate_but_finite_interval() -> None:
    df = pd.DataFrame({"arm": ["a", "a", "b", "b"], "cost": [5.0, 5.0, 7.0, 7.0]})
    r = stats.cost_difference(df, "cost", "arm", n_boot=100, rng=1)
    assert r.ci == (2.0, 2.0) and r.ci_bca == (2.0, 2.0)
