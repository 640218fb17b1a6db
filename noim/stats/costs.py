"""Costs by arm: mean cost per arm and the mean difference with bootstrap intervals.

Non-parametric bootstrap resampling units within arm (children, or whole clusters such
as families when ``cluster`` is given), vectorised: each arm draws an (n_boot x units)
index matrix and the replicate means are ratios of cluster sums. Percentile and BCa
intervals; a normal-theory interval alongside. See docs/analysis-methods.md, "Costs".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from noim.stats._base import (
    Z975,
    Result,
    StatsInputError,
    check_clusters,
    complete_cases,
    generator,
    group_levels,
    numeric_column,
    references,
    two_arms,
)

CHUNK_CELLS = 1 << 22  # at most ~4M drawn indices in memory at once


@dataclass(frozen=True, repr=False)
class CostResult(Result):
    """Mean cost per arm and the difference (second arm minus first) with bootstrap CIs.

    ``influence`` holds the jackknife influence values of the units (reference arm first)
    and ``acceleration`` the BCa acceleration computed from them.
    """

    levels: tuple[Any, Any]
    means: pd.Series
    estimate: float
    ci: tuple[float, float]
    ci_bca: tuple[float, float]
    ci_normal: tuple[float, float]
    se: float
    n_boot: int
    replicates: np.ndarray[Any, np.dtype[np.float64]]
    influence: np.ndarray[Any, np.dtype[np.float64]]
    acceleration: float


def _unit_sums(
    y: np.ndarray[Any, Any], unit: np.ndarray[Any, Any]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    _, inverse = np.unique(unit, return_inverse=True)
    return np.bincount(inverse, weights=y), np.bincount(inverse).astype(float)


def _boot_means(
    s: np.ndarray[Any, Any], c: np.ndarray[Any, Any], n_boot: int, rng: np.random.Generator
) -> np.ndarray[Any, Any]:
    g = len(s)
    out = np.empty(n_boot)
    step = max(1, CHUNK_CELLS // g)
    for lo in range(0, n_boot, step):
        hi = min(n_boot, lo + step)
        idx = rng.integers(0, g, size=(hi - lo, g))
        out[lo:hi] = s[idx].sum(axis=1) / c[idx].sum(axis=1)
    return out


def cost_difference(
    df: pd.DataFrame,
    cost: str,
    arm: str,
    cluster: str | None = None,
    n_boot: int = 2000,
    rng: np.random.Generator | int | None = None,
    reference: Mapping[str, Any] | None = None,
) -> CostResult:
    """Mean cost by arm and the difference mean_1 - mean_0 with bootstrap 95% CIs.

    Units are rows, or with ``cluster`` the (arm, cluster) groups: each arm's units are
    resampled with replacement within that arm (stratified, cluster bootstrap), and each
    replicate's arm mean is sum of resampled unit cost sums / sum of their sizes (the
    per-child mean). ``ci`` is the percentile interval (2.5% and 97.5% quantiles of the
    replicates interpolated on the normal scale, ``norm_inter``, as R's ``boot.ci``);
    ``ci_bca`` is Efron's BCa interval (``bca_interval``) with bias
    z0 = Phi^-1(share of replicates below the estimate) and acceleration from the
    leave-one-unit-out jackknife (``jackknife_influence``), equal to
    ``boot.ci(boot(..., strata = arm), type = "bca")`` given the same replicates; ``ci_normal`` is d +- 1.96 sqrt(V0 + V1) with
    V_a = G_a / (G_a - 1) sum_c (S_c - mean_a N_c)^2 / N_a^2 (s^2/n without clusters).
    ``se`` is the replicates' SD. ``rng``: numpy Generator or int seed (required).
    Costs must be finite and non-negative; each arm needs two or more units. Rows with a
    missing value in a column used are dropped and counted (``n_dropped``).

    Parameters
    ----------
    df : DataFrame
        One row per child.
    cost : str
        The cost column (>= 0).
    arm : str
        The arm column, exactly two levels.
    cluster : str, optional
        The cluster column (family): the bootstrap resamples clusters.
    n_boot : int
        Bootstrap replicates (at least 100).
    rng : numpy.random.Generator or int
        The source of randomness (required).
    reference : mapping, optional
        The reference arm level, ``{"arm": "SAU"}`` (default: the first level, a
        Categorical's first category, else the first in sorted order).

    Returns
    -------
    CostResult
        ``levels``, ``means`` (by arm), ``estimate`` (d), ``ci`` (percentile), ``ci_bca``,
        ``ci_normal``, ``se``, ``n_boot``, ``replicates`` and ``summary``.

    Raises
    ------
    StatsInputError
        Negative or infinite costs, not exactly two arms, fewer than two units in an arm,
        ``n_boot`` < 100, no ``rng``.
    """
    where = "cost_difference"
    gen = generator(rng, where)
    refs = references(reference, [arm], where)
    df, n_dropped, dropped_by_column = complete_cases(df, [cost, arm, cluster], where)
    if n_boot < 100:
        raise StatsInputError(f"{where}: n_boot = {n_boot}; expected at least 100 replicates")
    y = numeric_column(df, cost, where, minimum=0.0)
    levels, codes = two_arms(df, arm, where, refs.get(arm))
    if cluster is None:
        unit = np.arange(len(df))
    else:
        unit = group_levels(df, cluster, where)[1]
        check_clusters(unit, codes, levels, cluster, arm, where)
    sums, sizes, boots = [], [], []
    for j in (0, 1):
        rows = codes == j
        s, c = _unit_sums(y[rows], unit[rows])
        if len(s) < 2:
            what = "row" if cluster is None else f"cluster of {cluster!r}"
            raise StatsInputError(
                f"{where}: arm {levels[j]!r} has {len(s)} {what}; expected at least two to bootstrap"
            )
        sums.append(s)
        sizes.append(c)
        boots.append(_boot_means(s, c, n_boot, gen))
    means = np.array([sums[j].sum() / sizes[j].sum() for j in (0, 1)])
    est = float(means[1] - means[0])
    reps = boots[1] - boots[0]
    lo, hi = (float(v) for v in norm_inter(reps, [0.025, 0.975]))
    var = [
        len(sums[j])
        / (len(sums[j]) - 1)
        * np.sum((sums[j] - means[j] * sizes[j]) ** 2)
        / sizes[j].sum() ** 2
        for j in (0, 1)
    ]
    half = Z975 * float(np.sqrt(var[0] + var[1]))
    influence = jackknife_influence(sums, sizes)
    bca = bca_interval(reps, est, influence)
    n_arm = [int(sizes[j].sum()) for j in (0, 1)]
    units = [len(sums[j]) for j in (0, 1)]
    term = f"{arm}[T.{levels[1]}]"
    summary = pd.DataFrame(
        {
            "estimate": [means[0], means[1], est],
            "se": [np.sqrt(var[0]), np.sqrt(var[1]), float(np.std(reps, ddof=1))],
            "lower": [np.nan, np.nan, lo],
            "upper": [np.nan, np.nan, hi],
            "bca_lower": [np.nan, np.nan, bca[0]],
            "bca_upper": [np.nan, np.nan, bca[1]],
            "n": [n_arm[0], n_arm[1], sum(n_arm)],
            "units": [units[0], units[1], sum(units)],
        },
        index=pd.Index([f"mean[{levels[0]}]", f"mean[{levels[1]}]", term], name="term"),
    )
    boot = "cluster bootstrap" if cluster is not None else "bootstrap"
    return CostResult(
        n_dropped=n_dropped,
        dropped_by_column=dropped_by_column,
        method=f"mean {cost!r} by arm, difference with {boot} CI (n_boot = {n_boot}; percentile, BCa)",
        n=len(df),
        summary=summary,
        levels=(levels[0], levels[1]),
        means=pd.Series(means, index=pd.Index(levels, name=arm), name=cost),
        estimate=est,
        ci=(lo, hi),
        ci_bca=bca,
        ci_normal=(est - half, est + half),
        se=float(np.std(reps, ddof=1)),
        n_boot=n_boot,
        replicates=reps,
        influence=influence,
        acceleration=acceleration(influence),
    )


def norm_inter(
    replicates: np.ndarray[Any, Any], alpha: Sequence[float] | np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """Quantiles of the replicates interpolated on the normal quantile scale, as R's
    ``boot:::norm.inter`` (Davison & Hinkley 1997, eq. 5.8).

    With the R finite replicates sorted, t*_(1) <= ... <= t*_(R), and k = floor((R + 1) alpha):
    t*_(k) when (R + 1) alpha is whole, the extreme order statistic when k is 0 or R, else
    t*_(k) + (Phi^-1(alpha) - Phi^-1(k/(R+1))) / (Phi^-1((k+1)/(R+1)) - Phi^-1(k/(R+1)))
    (t*_(k+1) - t*_(k)).
    """
    t = np.sort(np.asarray(replicates, dtype=float)[np.isfinite(replicates)])
    r = len(t)
    a = np.asarray(alpha, dtype=float)
    rk = (r + 1) * a
    k = np.trunc(rk).astype(np.int64)
    out = np.empty(len(a))
    for i in range(len(a)):  # two limits
        if k[i] == rk[i] and 0 < k[i] <= r:
            out[i] = t[k[i] - 1]
        elif k[i] <= 0:
            out[i] = t[0]
        elif k[i] >= r:
            out[i] = t[r - 1]
        else:
            lo, hi = sps.norm.ppf([k[i] / (r + 1), (k[i] + 1) / (r + 1)])
            w = (sps.norm.ppf(a[i]) - lo) / (hi - lo)
            out[i] = t[k[i] - 1] + w * (t[k[i]] - t[k[i] - 1])
    return out


def jackknife_influence(
    sums: Sequence[np.ndarray[Any, Any]], sizes: Sequence[np.ndarray[Any, Any]]
) -> np.ndarray[Any, Any]:
    """Jackknife influence values of d = mean_1 - mean_0 for each unit, reference arm first.

    Leaving unit i out of its arm j (stratified: the other arm is unchanged),
    L_i = (G_j - 1)(d - d_(-i)), which is +(G_1 - 1)(mean_1 - mean_1(-i)) in the compared arm
    and -(G_0 - 1)(mean_0 - mean_0(-i)) in the reference arm: R's
    ``empinf(b, type = "jack")`` for ``boot(..., strata = arm)``.  Without clusters
    L_i = +-(y_i - mean_j), the exact influence values of the difference in means.
    """
    out = []
    for j, sign in ((0, -1.0), (1, 1.0)):
        g = len(sums[j])
        total, size = sums[j].sum(), sizes[j].sum()
        loo = (total - sums[j]) / (size - sizes[j])
        out.append(sign * (g - 1) * (total / size - loo))
    return np.concatenate(out)


def bca_interval(
    replicates: np.ndarray[Any, Any],
    estimate: float,
    influence: np.ndarray[Any, Any],
    level: float = 0.95,
) -> tuple[float, float]:
    """Efron's BCa limits from bootstrap replicates, as R's ``boot.ci(type = "bca", L = influence)``.

    z0 = Phi^-1(share of replicates below the estimate), acceleration
    a = sum L^3 / (6 (sum L^2)^(3/2)), limits at the adjusted levels
    Phi(z0 + (z0 + z_alpha) / (1 - a (z0 + z_alpha))) read by ``norm_inter``.  When the
    replicates do not straddle the estimate (z0 infinite, where R stops with an error) the
    percentile limits are returned.
    """
    t = np.asarray(replicates, dtype=float)
    t = t[np.isfinite(t)]
    alpha = np.array([(1 - level) / 2, (1 + level) / 2])
    below = float(np.mean(t < estimate))
    if below in (0.0, 1.0):
        lo, hi = norm_inter(t, alpha)
        return (float(lo), float(hi))
    z0 = float(sps.norm.ppf(below))
    a = acceleration(influence)
    z = sps.norm.ppf(alpha)
    adj = sps.norm.cdf(z0 + (z0 + z) / (1.0 - a * (z0 + z)))
    lo, hi = norm_inter(t, adj)
    return (float(lo), float(hi))


def acceleration(influence: np.ndarray[Any, Any]) -> float:
    """The BCa acceleration sum L^3 / (6 (sum L^2)^(3/2)) (0 when every L is 0)."""
    L = np.asarray(influence, dtype=float)
    denom = 6.0 * float(np.sum(L**2)) ** 1.5
    return float(np.sum(L**3)) / denom if denom > 0 else 0.0
