"""stats.cost_difference: seeded bootstrap, coverage of a known difference, agreement with
the normal-theory interval at large n_boot, the cluster bootstrap and the refusals; the
percentile and BCa limits against R's ``boot.ci`` given R's own replicates.

Data: aircondit / aircondit7 (boot package; Proschan's air-conditioning failure times,
skewed) as two arms; tests/data/costs_clustered.csv (53 children in 30 families, lognormal
costs, generated once with numpy seed 20260413). R's replicates are in
tests/data/costs_aircondit_boot.csv and tests/data/costs_clustered_boot.csv (boot 1.3-28.1).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from noim import stats
from noim.stats import StatsInputError
from noim.stats.costs import bca_interval, norm_inter

DATA = Path(__file__).parent / "data"
AIRCONDIT = [3, 5, 7, 18, 43, 85, 91, 98, 100, 130, 230, 487]
AIRCONDIT7 = [3, 5, 5, 13, 14, 15, 22, 22, 23, 30, 36, 39, 44, 46, 50, 72, 79, 88, 97, 102, 139,
              188, 197, 210]  # fmt: skip


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


def test_bca_equals_boot_ci_on_skewed_costs() -> None:
    # library(boot)
    # d <- data.frame(cost = c(aircondit$hours, aircondit7$hours), arm = rep(c("a", "b"), c(12, 24)))
    # stat <- function(d, i) { x <- d[i, ]; mean(x$cost[x$arm == "b"]) - mean(x$cost[x$arm == "a"]) }
    # set.seed(20260413); b <- boot(d, stat, R = 999, strata = factor(d$arm))   # b$t -> csv
    # boot.ci(b, type = c("perc", "bca"))
    #   t0 -43.9583333333333; percent -127.458333333333 18.9166666666667
    #   bca (adjusted orders 10.66, 953.11) -147.341134660413 12.2999327206613
    # L <- empinf(b) (regression, the default) equals empinf(b, type = "jack") to 7e-13;
    # sum(L^3) / (6 * sum(L^2)^1.5) = -0.0473281167423646
    # (before the fix the reference arm's influence values had the wrong sign and the limits
    # were -120.2 and 28.4)
    df = pd.DataFrame({"cost": AIRCONDIT + AIRCONDIT7, "arm": ["a"] * 12 + ["b"] * 24})
    r = stats.cost_difference(df, "cost", "arm", n_boot=999, rng=1)
    assert r.estimate == pytest.approx(-43.9583333333333, rel=1e-13)
    assert r.acceleration == pytest.approx(-0.0473281167423646, rel=1e-12)
    # without clusters the influence values are the exact ones, +-(y - mean of the arm)
    expected = np.concatenate(
        [-(np.array(AIRCONDIT) - np.mean(AIRCONDIT)), np.array(AIRCONDIT7) - np.mean(AIRCONDIT7)]
    )
    np.testing.assert_allclose(r.influence, expected, rtol=1e-12)
    reps = pd.read_csv(DATA / "costs_aircondit_boot.csv")["t"].to_numpy()
    assert norm_inter(reps, [0.025, 0.975]) == pytest.approx(
        [-127.458333333333, 18.9166666666667], rel=1e-12
    )
    assert bca_interval(reps, r.estimate, r.influence) == pytest.approx(
        (-147.341134660413, 12.2999327206613), rel=1e-12
    )


def test_cluster_bca_equals_boot_ci_with_jackknife_influence() -> None:
    # k <- read.csv("tests/data/costs_clustered.csv")
    # fam <- aggregate(cost ~ family + arm, k, function(v) c(s = sum(v), n = length(v)))
    # fam <- data.frame(family = fam$family, arm = fam$arm, s = fam$cost[, "s"], n = fam$cost[, "n"])
    # cstat <- function(d, i) { x <- d[i, ]; b <- x$arm == "nim"
    #   sum(x$s[b]) / sum(x$n[b]) - sum(x$s[!b]) / sum(x$n[!b]) }
    # set.seed(7); cb <- boot(fam, cstat, R = 999, strata = factor(fam$arm))   # cb$t -> csv
    # Lc <- empinf(cb, type = "jack"); boot.ci(cb, type = c("perc", "bca"), L = Lc)
    #   t0 247.738548850575; a = sum(Lc^3) / (6 * sum(Lc^2)^1.5) = -0.043192430997352
    #   percent -281.336980392157 609.685030425964; bca -361.232208262338 567.066982478302
    #   Lc for F01, F02, F03: 57.1945833333334 668.9627651515160 -2018.6171557971008
    # (for a ratio of sums the regression estimate empinf(cb) differs from the jackknife one;
    # noim uses the jackknife, so R needs L = empinf(cb, type = "jack"))
    df = pd.read_csv(DATA / "costs_clustered.csv")
    with pytest.warns(stats.FewClustersWarning):
        r = stats.cost_difference(df, "cost", "arm", cluster="family", n_boot=999, rng=1)
    assert r.estimate == pytest.approx(247.738548850575, rel=1e-12)
    assert r.acceleration == pytest.approx(-0.043192430997352, rel=1e-10)
    np.testing.assert_allclose(
        r.influence[:3], [57.1945833333334, 668.9627651515160, -2018.6171557971008], rtol=1e-12
    )
    reps = pd.read_csv(DATA / "costs_clustered_boot.csv")["t"].to_numpy()
    assert norm_inter(reps, [0.025, 0.975]) == pytest.approx(
        [-281.336980392157, 609.685030425964], rel=1e-12
    )
    assert bca_interval(reps, r.estimate, r.influence) == pytest.approx(
        (-361.232208262338, 567.066982478302), rel=1e-12
    )


def test_norm_inter_extremes_and_whole_orders() -> None:
    t = np.arange(1.0, 20.0)  # R = 19: (R + 1) alpha whole at alpha = 0.05, 0.5
    assert norm_inter(t, [0.05, 0.5]).tolist() == [1.0, 10.0]
    assert norm_inter(t, [0.01, 0.999]).tolist() == [1.0, 19.0]  # beyond the extremes
