"""Counts by arm with exposure: Poisson and negative binomial (NB2) rate ratios.

The model is log E[y] = log(exposure) + b0 + b1 arm + covariates.  Poisson by GLM (R's
``glm(family = poisson)``); negative binomial NB2 with the dispersion theta estimated by
maximum likelihood alternating with the GLM fit at fixed theta, as ``MASS::glm.nb`` does
(SEs from the GLM's expected information at the ML theta, as ``summary.negbin``).  With
``cluster`` the SEs are the cluster-robust sandwich without small-sample factor (equal to
geepack's independence GEE and ``sandwich::vcovCL(type = "HC0", cadjust = FALSE)``).
See docs/analysis-methods.md, "Counts".
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special as spf
from scipy import stats as sps

from noim.stats import _sm as sm
from noim.stats._base import (
    Z975,
    Effect,
    Result,
    StatsInputError,
    check_clusters,
    complete_cases,
    group_levels,
    numeric_column,
    references,
    two_arms,
)
from noim.stats.design import arm_matrix, cluster_sums

MODELS = ("poisson", "negbin")
THETA_MAX = 1e8  # beyond this the negative binomial is the Poisson


def _theta_ml(y: np.ndarray[Any, Any], mu: np.ndarray[Any, Any]) -> float:
    """ML estimate of theta given the means, by Newton's method from the moment estimate
    as ``MASS::theta.ml`` (iterated to 1e-12 relative); inf when not overdispersed."""
    theta = len(y) / float(np.sum((y / mu - 1.0) ** 2))
    for _ in range(200):
        if not np.isfinite(theta) or theta <= 0 or theta > THETA_MAX:
            return float("inf")
        score = np.sum(
            spf.digamma(theta + y)
            - spf.digamma(theta)
            + np.log(theta)
            + 1.0
            - np.log(theta + mu)
            - (y + theta) / (mu + theta)
        )
        info = np.sum(
            -spf.polygamma(1, theta + y)
            + spf.polygamma(1, theta)
            - 1.0 / theta
            + 2.0 / (mu + theta)
            - (y + theta) / (mu + theta) ** 2
        )
        step = float(score / info)
        while theta + step <= 0:  # keep theta positive
            step /= 2.0
        theta += step
        if abs(step) <= 1e-12 * theta:
            return float(theta)
    return float("inf")


def _glm(
    y: np.ndarray[Any, Any],
    x: pd.DataFrame,
    offset: np.ndarray[Any, Any],
    family: Any,
    start: np.ndarray[Any, Any] | None = None,
) -> Any:
    return sm.GLM(y, x, family=family, offset=offset).fit(
        tol=1e-12, maxiter=200, start_params=start
    )


def _cluster_se(
    y: np.ndarray[Any, Any],
    x: pd.DataFrame,
    mu: np.ndarray[Any, Any],
    theta: float | None,
    groups: np.ndarray[Any, Any],
) -> np.ndarray[Any, Any]:
    """Sandwich SE B M B with B = (X'WX)^-1 (expected information) and M the sum over
    clusters of the outer products of the cluster score sums; no small-sample factor."""
    xm = x.to_numpy(dtype=float)
    k = 1.0 if theta is None else 1.0 + mu / theta
    w = mu / k
    bread = np.linalg.inv(xm.T @ (xm * w[:, None]))
    u = xm * ((y - mu) / k)[:, None]
    g = np.unique(groups, return_inverse=True)[1]
    ug = cluster_sums(u, g, int(g.max()) + 1)
    cov = bread @ (ug.T @ ug) @ bread
    return np.asarray(np.sqrt(np.diag(cov)), dtype=float)


@dataclass(frozen=True, repr=False)
class RateResult(Result):
    """Rate ratio of the second arm against the first, with the fitted model's terms."""

    levels: tuple[Any, Any]
    model: str
    rate_ratio: Effect
    rates: pd.DataFrame
    theta: float | None
    cluster_robust: bool


def rate_ratio(
    df: pd.DataFrame,
    outcome: str,
    arm: str,
    exposure: str,
    model: str = "poisson",
    covariates: Sequence[str] = (),
    cluster: str | None = None,
    reference: Mapping[str, Any] | None = None,
) -> RateResult:
    """Rate ratio of counts (e.g. placement moves) per unit exposure (e.g. days in care).

    log mu_i = log(exposure_i) + b0 + b1 [arm_i = second level] + covariates; the rate
    ratio is exp(b1) with the 95% Wald interval exp(b1 +- 1.96 se) and the normal p.
    ``model="poisson"``: Var y = mu. ``model="negbin"``: NB2, Var y = mu + mu^2 / theta,
    theta by ML (``.theta``); if the ML theta is infinite (no overdispersion) an error asks
    for the Poisson model. ``cluster``: robust sandwich SE (no small-sample factor).
    Covariates: numeric as they are, others dummy-coded ``col[T.level]`` against the first
    level (a Categorical's first category, else the first sorted) or ``reference[col]``.
    ``.summary``: index = term; columns estimate (the rate ratio exp(b)), se (of b, log
    scale), lower, upper (rate ratio scale), statistic (z), p, coef (b). Rows with a
    missing value in a column used are dropped and counted (``n_dropped``).

    Parameters
    ----------
    df : DataFrame
        One row per child.
    outcome : str
        The counts (whole numbers >= 0).
    arm : str
        The arm column, exactly two levels.
    exposure : str
        The exposure (> 0), entering as the offset log(exposure).
    model : {"poisson", "negbin"}
        The count distribution.
    covariates : sequence of str
        Adjustment columns (numeric as they are, others ``col[T.level]`` dummies).
    cluster : str, optional
        The cluster column: sandwich SE summed by cluster.
    reference : mapping, optional
        Reference levels of the arm and categorical covariates, e.g. ``{"arm": "SAU"}``
        (default: the first level).

    Returns
    -------
    RateResult
        ``rate_ratio`` (``Effect``: estimate, lower, upper, pvalue, se on the log scale,
        method), ``rates`` (n, events, exposure, rate by arm), ``theta`` (None for Poisson),
        ``levels``, ``model``, ``cluster_robust`` and ``summary``.

    Raises
    ------
    StatsInputError
        Negative or non-integer counts, exposure <= 0, infinite values, an arm without events, a single
        cluster, no overdispersion with ``model="negbin"``, an unknown model.
    """
    where = "rate_ratio"
    if model not in MODELS:
        raise StatsInputError(f"{where}: model {model!r}; expected one of {', '.join(MODELS)}")
    refs = references(reference, [arm, *covariates], where)
    df, n_dropped, dropped_by_column = complete_cases(
        df, [outcome, arm, exposure, cluster, *covariates], where
    )
    y = numeric_column(df, outcome, where, minimum=0)
    if (y != np.floor(y)).any():
        i = int(np.argmax(y != np.floor(y)))
        raise StatsInputError(
            f"{where}: column {outcome!r} holds {y[i]!r} (row {df.index[i]!r}); expected whole counts"
        )
    t = numeric_column(df, exposure, where)
    if (t <= 0).any():
        i = int(np.argmax(t <= 0))
        raise StatsInputError(
            f"{where}: column {exposure!r} holds {t[i]!r} (row {df.index[i]!r}); "
            "expected a positive exposure"
        )
    levels, codes = two_arms(df, arm, where, refs.get(arm))
    events = np.bincount(codes, weights=y, minlength=2)
    if (events == 0).any():
        j = int(np.argmin(events))
        raise StatsInputError(
            f"{where}: arm {levels[j]!r} has no events in {outcome!r}; the rate ratio is 0 or "
            "infinite and its log-scale interval undefined — report the rates by arm"
        )
    groups = None
    if cluster is not None:
        _, groups = group_levels(df, cluster, where)
        check_clusters(groups, codes, levels, cluster, arm, where)
    x = arm_matrix(df, arm, levels, covariates, where, reference=refs)
    offset = np.log(t)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fit = _glm(y, x, offset, sm.families.Poisson())
        theta: float | None = None
        if model == "negbin":
            theta, fit = _negbin(y, x, offset, fit, where)
    params = np.asarray(fit.params, dtype=float)
    se = np.asarray(fit.bse, dtype=float)
    if groups is not None:
        se = _cluster_se(y, x, np.asarray(fit.fittedvalues, dtype=float), theta, groups)
    z = params / se
    summary = pd.DataFrame(
        {
            "estimate": np.exp(params),
            "se": se,
            "lower": np.exp(params - Z975 * se),
            "upper": np.exp(params + Z975 * se),
            "statistic": z,
            "p": 2.0 * sps.norm.sf(np.abs(z)),
            "coef": params,
        },
        index=pd.Index(x.columns, name="term"),
    )
    label = ("Poisson GLM" if model == "poisson" else "negative binomial (NB2, ML theta)") + (
        ", cluster-robust SE" if cluster is not None else ""
    )
    term = x.columns[1]
    eff = Effect(
        float(summary.at[term, "estimate"]),
        float(summary.at[term, "lower"]),
        float(summary.at[term, "upper"]),
        float(summary.at[term, "p"]),
        float(summary.at[term, "se"]),
        label,
    )
    exposure_sum = np.bincount(codes, weights=t, minlength=2)
    rates = pd.DataFrame(
        {
            "n": np.bincount(codes, minlength=2),
            "events": events,
            "exposure": exposure_sum,
            "rate": events / exposure_sum,
        },
        index=pd.Index(levels, name=arm),
    )
    return RateResult(
        n_dropped=n_dropped,
        dropped_by_column=dropped_by_column,
        method=f"rate ratio of {outcome!r} per {exposure!r}: {label}",
        n=len(df),
        summary=summary,
        levels=(levels[0], levels[1]),
        model=model,
        rate_ratio=eff,
        rates=rates,
        theta=theta,
        cluster_robust=cluster is not None,
    )


def _negbin(
    y: np.ndarray[Any, Any],
    x: pd.DataFrame,
    offset: np.ndarray[Any, Any],
    fit: Any,
    where: str,
) -> tuple[float, Any]:
    """Alternate theta = ML(mu) and the GLM at fixed theta until theta settles (glm.nb)."""
    theta = _theta_ml(y, np.asarray(fit.fittedvalues, dtype=float))
    for _ in range(100):
        if not np.isfinite(theta):
            raise StatsInputError(
                f"{where}: the counts show no overdispersion (ML theta is infinite); "
                'expected overdispersed counts for model="negbin" — use model="poisson"'
            )
        fit = _glm(
            y,
            x,
            offset,
            sm.families.NegativeBinomial(alpha=1.0 / theta),
            np.asarray(fit.params),
        )
        new = _theta_ml(y, np.asarray(fit.fittedvalues, dtype=float))
        if np.isfinite(new) and abs(new - theta) <= 1e-12 * max(1.0, theta):
            theta = new
            break
        theta = new
    final = _glm(
        y, x, offset, sm.families.NegativeBinomial(alpha=1.0 / theta), np.asarray(fit.params)
    )
    return float(theta), final
