"""Outcome comparisons by arm: ANCOVA (optionally cluster-robust), random-intercept model, GEE.

``compare_arms`` estimates the adjusted mean difference between two arms (the second level
minus the first, or minus ``reference``: with noim's analysis data, whose ``arm`` lists the
control arm first, intervention minus control, e.g. NIM - SAU) with baseline and covariates,
keeping children without a baseline by default (missing-indicator method); ``interaction``
estimates the arm effect within each level of a subgroup column and tests the interaction.
See docs/analysis-methods.md, "Outcome comparisons by arm", for the models and conventions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from noim.stats._base import Result, StatsInputError, table_text
from noim.stats.design import (
    DEFAULT_BASELINE_MISSING,
    Design,
    FloatArray,
    build_design,
    cluster_sums,
)
from noim.stats.gee import fit_gee_exchangeable
from noim.stats.mixed import fit_random_intercept

METHODS = ("ancova", "mixed", "gee")
_LABELS = {
    "ancova": "ANCOVA (OLS)",
    "ancova-cluster": "ANCOVA (OLS, cluster-robust CR1 SE)",
    "mixed": "linear mixed model, random intercept per cluster (REML)",
    "gee": "GEE, exchangeable working correlation, robust SE",
}


@dataclass(frozen=True)
class _Fit:
    params: FloatArray
    cov: FloatArray
    df: float | None  # degrees of freedom of the t reference; None = normal (z)
    label: str
    extra: dict[str, float]


def _fit(design: Design, method: str, where: str) -> _Fit:
    y, X = design.y, design.X
    n, p = X.shape
    if method not in METHODS:
        raise StatsInputError(
            f"{where}: method {method!r} is not known; expected one of {', '.join(METHODS)}"
        )
    if method != "ancova" and design.cluster_codes is None:
        raise StatsInputError(
            f"{where}: method {method!r} needs cluster= (the column naming each row's cluster, "
            "e.g. the family); got cluster=None"
        )
    codes, G = design.cluster_codes, design.n_clusters
    if method == "mixed":
        assert codes is not None
        m = fit_random_intercept(y, X, codes, G, where)
        extra = {
            "tau2": m.tau2,
            "sigma2": m.sigma2,
            "icc": m.tau2 / (m.tau2 + m.sigma2),
            "reml_criterion": m.reml_criterion,
            "n_clusters": float(G),
        }
        return _Fit(m.params, m.cov, None, _LABELS["mixed"], extra)
    if method == "gee":
        assert codes is not None
        g = fit_gee_exchangeable(y, X, codes, G, where)
        extra = {"alpha": g.alpha, "scale": g.scale, "n_clusters": float(G)}
        return _Fit(g.params, g.cov, None, _LABELS["gee"], extra)
    XtX_inv = np.linalg.inv(X.T @ X)
    b = XtX_inv @ (X.T @ y)
    e = y - X @ b
    sigma2 = float(e @ e) / (n - p)
    if sigma2 <= 1e-28 * max(float(y @ y), 1.0):
        raise StatsInputError(
            f"{where}: the outcome is fitted exactly by arm and covariates (zero residual "
            "variance); expected residual variation"
        )
    if codes is None:
        return _Fit(b, sigma2 * XtX_inv, float(n - p), _LABELS["ancova"], {"sigma2": sigma2})
    U = cluster_sums(X * e[:, None], codes, G)
    factor = G / (G - 1) * (n - 1) / (n - p)
    cov = factor * XtX_inv @ (U.T @ U) @ XtX_inv
    return _Fit(b, cov, float(G - 1), _LABELS["ancova-cluster"], {"n_clusters": float(G)})


def _table(names: Sequence[str], est: FloatArray, se: FloatArray, df: float | None) -> pd.DataFrame:
    stat = est / se
    if df is None:
        q = sps.norm.ppf(0.975)
        p = 2 * sps.norm.sf(np.abs(stat))
    else:
        q = sps.t.ppf(0.975, df)
        p = 2 * sps.t.sf(np.abs(stat), df)
    return pd.DataFrame(
        {
            "estimate": est,
            "se": se,
            "lower": est - q * se,
            "upper": est + q * se,
            "statistic": stat,
            "p": p,
        },
        index=pd.Index(list(names), name="term"),
    )


def _design_fit(
    df: pd.DataFrame,
    outcome: str,
    arm: str,
    baseline: str | None,
    covariates: Sequence[str],
    cluster: str | None,
    method: str,
    reference: Mapping[str, Any] | None,
    where: str,
    by: str | None = None,
    baseline_missing: str = DEFAULT_BASELINE_MISSING,
) -> tuple[Design, _Fit, pd.DataFrame]:
    """Design (complete cases but the baseline), fit by ``method`` and the coefficient table."""
    design = build_design(
        df,
        outcome,
        arm,
        baseline=baseline,
        covariates=covariates,
        cluster=cluster,
        reference=reference,
        where=where,
        by=by,
        baseline_missing=baseline_missing,
    )
    fit = _fit(design, method, where)
    se = np.sqrt(np.diag(fit.cov))
    return design, fit, _table(design.names, fit.params, se, fit.df)


def _pooled_sd(design: Design) -> float:
    """SD of the raw outcome pooled across the two arms: sqrt(sum (n_a - 1) s_a^2 / (n - 2))."""
    y, a = design.y, design.arm_codes
    ss = 0.0
    for k in (0, 1):
        yk = y[a == k]
        ss += float(((yk - yk.mean()) ** 2).sum())
    return float(np.sqrt(ss / (len(y) - 2)))


def _counts(design: Design) -> dict[Any, int]:
    counts = np.bincount(design.arm_codes, minlength=2)
    return {level: int(counts[i]) for i, level in enumerate(design.arm_levels)}


def _filled_counts(design: Design) -> dict[Any, int]:
    """Rows analysed with the baseline set to the mean, per arm (reference first)."""
    if design.baseline_filled is None:
        return dict.fromkeys(design.arm_levels, 0)
    counts = np.bincount(design.arm_codes[design.baseline_filled], minlength=2)
    return {level: int(counts[i]) for i, level in enumerate(design.arm_levels)}


#: how each ``baseline_missing`` handles a missing baseline, in words
BASELINE_WORDS = {
    "indicator": "kept: baseline set to the mean of the observed baselines, with a "
    "missing-indicator term (White & Thompson 2005)",
    "mean": "kept: baseline set to the mean of the observed baselines (White & Thompson 2005)",
    "drop": "dropped (complete cases)",
}


def _header(result: ArmComparison | Interaction) -> str:
    n = ", ".join(f"{k}: {v}" for k, v in result.n.items())
    with_outcome = ", ".join(f"{k}: {v}" for k, v in result.n_outcome.items())
    lines = [
        f"{result.method}",
        f"outcome {result.outcome!r}; n analysed = {sum(result.n.values())} ({n}); "
        f"with the outcome {with_outcome}",
    ]
    if result.n_dropped:
        lines.append(
            f"{result.n_dropped} row(s) with missing values dropped (complete cases): "
            + ", ".join(f"{k} {v}" for k, v in result.dropped_by_column.items())
        )
    if sum(result.n_baseline_missing.values()):
        lines.append(
            f"{sum(result.n_baseline_missing.values())} row(s) without a baseline ("
            + ", ".join(f"{k}: {v}" for k, v in result.n_baseline_missing.items())
            + f") {BASELINE_WORDS[result.baseline_missing]}"
        )
    stat = "z (normal)" if result.df is None else f"t ({result.df:g} df)"
    extra = ", ".join(f"{k} = {v:.6g}" for k, v in result.extra.items())
    lines.append(f"reference distribution {stat}" + (f"; {extra}" if extra else ""))
    return "\n".join(lines)


@dataclass(frozen=True, repr=False)
class ArmComparison(Result):
    """Adjusted mean difference between two arms (``compare_arms``).

    The model y = b0 + b1 [arm = comparison] + b2 baseline + c'z (+ u_cluster) + e; see
    ``compare_arms`` for the methods.

    Attributes
    ----------
    estimate, se, ci, pvalue : float, float, (float, float), float
        b1 (comparison minus reference: ``contrast``), its SE, 95% interval and two-sided p.
    n : dict
        Rows analysed per arm, reference arm first.
    n_outcome : dict
        Rows with the outcome observed per arm (among the rows given), reference arm first.
    baseline_missing : str
        How a missing baseline was handled: "indicator", "mean" or "drop".
    n_baseline_missing : dict
        Rows analysed whose baseline was missing (set to the mean), per arm.
    reference, comparison : level
        The two arm levels.
    effect_size, pooled_sd : float
        ``estimate / pooled_sd``, the SD of the raw outcome pooled across the arms.
    df : float or None
        Degrees of freedom of the t reference distribution (None: normal).
    summary : DataFrame
        Every coefficient: estimate, se, lower, upper, statistic, p.
    n_dropped, dropped_by_column : int, dict
        Rows dropped for missing values (complete cases), in total and per column.
    extra : dict
        Variance components, working correlation, number of clusters.
    """

    n: dict[Any, int]  # type: ignore[assignment]
    outcome: str
    arm: str
    reference: Any
    comparison: Any
    estimate: float
    se: float
    ci: tuple[float, float]
    pvalue: float
    effect_size: float
    pooled_sd: float
    df: float | None
    extra: dict[str, float]
    n_outcome: dict[Any, int]
    baseline_missing: str
    n_baseline_missing: dict[Any, int]

    @property
    def contrast(self) -> str:
        """The direction of ``estimate`` in words, e.g. ``"NIM - SAU"``."""
        return f"{self.comparison} - {self.reference}"

    def __str__(self) -> str:
        return (
            f"{_header(self)}\n"
            f"{self.contrast}: {self.estimate:.6g} "
            f"(95% CI {self.ci[0]:.6g} to {self.ci[1]:.6g}; SE {self.se:.6g}; "
            f"p = {self.pvalue:.4g}); effect size {self.effect_size:.4g} "
            f"(pooled SD {self.pooled_sd:.6g})\n{table_text(self.summary)}"
        )

    def __repr__(self) -> str:
        return f"<ArmComparison: {self.contrast} = {self.estimate:.6g}, {self.method}>"


def compare_arms(
    df: pd.DataFrame,
    outcome: str,
    arm: str,
    baseline: str | None = None,
    covariates: Sequence[str] = (),
    cluster: str | None = None,
    method: str = "ancova",
    *,
    reference: Mapping[str, Any] | None = None,
    baseline_missing: str = DEFAULT_BASELINE_MISSING,
) -> ArmComparison:
    """Adjusted mean difference in ``outcome`` between the two levels of ``arm``.

    Model: ``outcome = b0 + b1 [arm = comparison] + b2 baseline (+ b3 [baseline missing])
    + covariates' c + error`` where ``comparison`` is the second arm level (or the level
    that is not ``reference``). ``.estimate`` is b1, comparison minus reference. The first
    level is the first category when ``arm`` is a pandas Categorical (noim's analysis data
    list the control arm first, so the default is intervention minus control, NIM - SAU),
    else the first in sorted order.

    Parameters
    ----------
    df : tidy DataFrame, one row per participant (per child).
    outcome, arm : column names; arm must have exactly two levels in the complete cases.
    baseline : the baseline measure of the outcome (numeric), or None.
    covariates : further columns; numeric ones enter linearly, others (strings, categories,
        booleans) are dummy coded against their first level (a Categorical's first category,
        else the first in sorted order), or against ``reference[column]``; dummies are named
        ``column[T.level]``.
    cluster : column naming each row's cluster (family). Required for "mixed" and "gee";
        with "ancova" it gives cluster-robust (CR1) standard errors.
    method : "ancova" (OLS; t with n - p df, or G - 1 df when clustered), "mixed"
        (random intercept per cluster, REML; SEs from (X'V^-1 X)^-1 as lme4; normal z) or
        "gee" (exchangeable working correlation, geepack conventions, sandwich SE; z).
    reference : the reference level of the arm and of categorical covariates, e.g.
        ``{"arm": "SAU", "site": "GLA"}`` (default: the first level, see above).
    baseline_missing : how rows with the outcome but no baseline are analysed (only with
        ``baseline``). "indicator" (the default): kept, the missing baselines set to the mean
        of the observed baselines of the rows analysed and a 0/1 term ``<baseline>_missing``
        added (the missing-indicator method; R: ``lm(y ~ arm + ifelse(is.na(b), mean(b,
        na.rm = TRUE), b) + is.na(b) + ...)``). "mean": kept, set to that mean, no indicator
        (mean imputation). "drop": dropped (complete cases). In a randomised trial both
        "indicator" and "mean" estimate the arm effect without bias and keep every child with
        the outcome (White & Thompson, Stat Med 2005;24:993-1007).

    Returns
    -------
    ArmComparison with ``estimate``, ``ci`` (95%), ``se``, ``pvalue``, ``n`` (analysed, per
    arm), ``n_outcome`` (with the outcome, per arm), ``n_baseline_missing``, ``contrast``,
    ``effect_size`` (estimate / SD of the raw outcome pooled across the arms), ``summary``
    (every coefficient: estimate, se, lower, upper, statistic, p), ``method``, ``df``,
    ``n_dropped`` / ``dropped_by_column`` (rows dropped for missing values) and ``extra``
    (variance components, working correlation, number of clusters).

    Rows with a missing value in any other column used are dropped and counted (complete
    cases, ``n_dropped``); infinite values are refused.
    """
    design, fit, table = _design_fit(
        df,
        outcome,
        arm,
        baseline,
        covariates,
        cluster,
        method,
        reference,
        "compare_arms",
        baseline_missing=baseline_missing,
    )
    row = table.loc[design.arm_term]
    sd = _pooled_sd(design)
    return ArmComparison(
        method=fit.label,
        n=_counts(design),
        summary=table,
        outcome=outcome,
        arm=arm,
        reference=design.arm_levels[0],
        comparison=design.arm_levels[1],
        estimate=float(row["estimate"]),
        se=float(row["se"]),
        ci=(float(row["lower"]), float(row["upper"])),
        pvalue=float(row["p"]),
        effect_size=float(row["estimate"]) / sd,
        pooled_sd=sd,
        df=fit.df,
        n_dropped=design.n_dropped,
        dropped_by_column=design.dropped_by_column,
        extra=fit.extra,
        n_outcome=design.n_outcome,
        baseline_missing=design.baseline_missing,
        n_baseline_missing=_filled_counts(design),
    )


@dataclass(frozen=True, repr=False)
class Interaction(Result):
    """Arm effect within subgroups and the test of arm x subgroup interaction (``interaction``).

    The model of ``compare_arms`` plus the subgroup dummies ``by[T.l]`` and the products
    ``arm[T.b]:by[T.l]``; the effect in subgroup l is b_arm + b_arm:by[l], the test is the
    Wald test W = b_I' Cov(b_I)^-1 b_I of all q interaction coefficients.

    Attributes
    ----------
    effects : DataFrame
        Index = subgroup level; columns estimate, se, lower, upper, statistic, p, n (rows in
        the subgroup).
    statistic, df_test, df_denom, pvalue, test
        The interaction test: F = W / q on (``df_test`` = q, ``df_denom``) for "ancova" (as
        R's ``anova`` of the nested models when not clustered), chi-square W on q df for
        "mixed" and "gee" (``df_denom`` None); ``test`` is "F" or "chi2".
    df : float or None
        Degrees of freedom of the coefficients' t tests (None: normal).
    summary : DataFrame
        Every coefficient of the interaction model.
    interaction_terms : list of str
        Names of the product terms.
    n, n_outcome, n_dropped, dropped_by_column, baseline_missing, n_baseline_missing, extra
        As ``ArmComparison``; the effects are ``contrast`` (comparison minus reference).
    """

    n: dict[Any, int]  # type: ignore[assignment]
    outcome: str
    arm: str
    by: str
    effects: pd.DataFrame
    interaction_terms: list[str]
    statistic: float
    df: float | None  # of the coefficient t tests (None = z); see df_test for the Wald test
    df_test: int
    df_denom: float | None
    pvalue: float
    test: str  # "F" or "chi2"
    extra: dict[str, float]
    n_outcome: dict[Any, int]
    baseline_missing: str
    n_baseline_missing: dict[Any, int]

    @property
    def contrast(self) -> str:
        """The direction of the effects in words, e.g. ``"NIM - SAU"``."""
        reference, comparison = list(self.n)
        return f"{comparison} - {reference}"

    def __str__(self) -> str:
        denom = f", {self.df_denom:g}" if self.df_denom is not None else ""
        return (
            f"{_header(self)}\n"
            f"arm effect ({self.contrast}) by {self.by!r}:\n{table_text(self.effects)}\n"
            f"interaction test: {self.test}({self.df_test}{denom}) = {self.statistic:.6g}, "
            f"p = {self.pvalue:.4g}\n{table_text(self.summary)}"
        )

    def __repr__(self) -> str:
        return f"<Interaction: {self.arm} x {self.by}, p = {self.pvalue:.4g}, {self.method}>"


def interaction(
    df: pd.DataFrame,
    outcome: str,
    arm: str,
    by: str,
    baseline: str | None = None,
    covariates: Sequence[str] = (),
    cluster: str | None = None,
    method: str = "ancova",
    *,
    reference: Mapping[str, Any] | None = None,
    baseline_missing: str = DEFAULT_BASELINE_MISSING,
) -> Interaction:
    """Subgroup analysis: the arm effect within each level of ``by`` and the interaction test.

    Model: ``compare_arms``'s model plus ``by`` (categorical, dummy coded against its first
    level or ``reference[by]``) and the products
    ``arm[T.b]:by[T.level]``. The arm effect in subgroup l is b_arm + b_arm:by[l] (its SE from
    the model covariance); the interaction test is the Wald test of all b_arm:by = 0. Other
    parameters as ``compare_arms``.

    Parameters
    ----------
    df, outcome, arm, baseline, covariates, cluster, method, reference, baseline_missing
        As ``compare_arms`` (default "indicator": children without a baseline are kept).
    by : str
        The subgroup column (categorical, at least two levels in the complete cases).

    Returns
    -------
    Interaction
        ``effects`` (arm effect per subgroup level: estimate, se, lower, upper, statistic, p,
        n), ``statistic``, ``df_test``, ``df_denom``, ``pvalue`` and ``test`` ("F" or "chi2")
        of the interaction test, ``interaction_terms``, ``summary`` (every coefficient), ``n``
        (rows analysed per arm), ``n_outcome``, ``n_baseline_missing``, ``n_dropped``,
        ``dropped_by_column`` and ``extra``.

    Raises
    ------
    StatsInputError
        As ``compare_arms``, and a subgroup column with a single level.
    """
    design, fit, table = _design_fit(
        df,
        outcome,
        arm,
        baseline,
        covariates,
        cluster,
        method,
        reference,
        "interaction",
        by=by,
        baseline_missing=baseline_missing,
    )
    p = len(design.names)
    arm_j = design.names.index(design.arm_term)
    inter_j = [design.names.index(t) for t in design.interaction_terms]
    L = np.zeros((len(design.by_levels), p))
    L[:, arm_j] = 1.0
    for row, j in enumerate(inter_j, start=1):
        L[row, j] = 1.0
    est = L @ fit.params
    se_l = np.sqrt(np.einsum("ij,jk,ik->i", L, fit.cov, L))
    effects = _table([str(v) for v in design.by_levels], est, se_l, fit.df)
    effects.index = pd.Index(design.by_levels, name=by)
    assert design.by_codes is not None
    effects["n"] = np.bincount(design.by_codes, minlength=len(design.by_levels))
    b = fit.params[inter_j]
    V = fit.cov[np.ix_(inter_j, inter_j)]
    wald = float(b @ np.linalg.solve(V, b))
    q = len(inter_j)
    if method == "ancova":
        assert fit.df is not None
        statistic, pvalue, test, denom = wald / q, float(sps.f.sf(wald / q, q, fit.df)), "F", fit.df
    else:
        statistic, pvalue, test, denom = wald, float(sps.chi2.sf(wald, q)), "chi2", None
    return Interaction(
        method=fit.label,
        n=_counts(design),
        summary=table,
        outcome=outcome,
        arm=arm,
        by=by,
        effects=effects,
        interaction_terms=design.interaction_terms,
        statistic=statistic,
        df=fit.df,
        df_test=q,
        df_denom=denom,
        pvalue=pvalue,
        test=test,
        n_dropped=design.n_dropped,
        dropped_by_column=design.dropped_by_column,
        extra=fit.extra,
        n_outcome=design.n_outcome,
        baseline_missing=design.baseline_missing,
        n_baseline_missing=_filled_counts(design),
    )
