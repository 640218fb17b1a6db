"""Multiple imputation by chained equations (PMM) and Rubin's rules with Barnard-Rubin df.

``impute`` fills the missing values of numeric columns by predictive mean matching
(mice's default ``pmm``: Bayesian linear regression draw, type-1 matching, 5 donors),
cycling over the columns ``max_iter`` times, separately within each level of ``by``.
``pool`` combines m estimates by Rubin's rules as ``mice::pool.scalar``;
``mi_compare_arms`` imputes within arm, analyses each completed data set and pools, with
the complete-case analysis alongside.  See docs/analysis-methods.md, "Missing data".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from noim.stats._base import (
    Result,
    StatsInputError,
    complete_cases,
    generator,
    group_levels,
    references,
    require_columns,
    two_arms,
)
from noim.stats.design import arm_matrix
from noim.stats.models import compare_arms

DONORS = 5  # mice's default number of donors for pmm
RIDGE = 1e-5  # mice's ridge on X'X (norm.draw)

Analyse = Callable[[pd.DataFrame], tuple[float, float]]


def _pmm(
    y_obs: np.ndarray[Any, Any],
    x_obs: np.ndarray[Any, Any],
    x_mis: np.ndarray[Any, Any],
    rng: np.random.Generator,
) -> np.ndarray[Any, Any]:
    """One PMM draw for the missing rows (mice.impute.pmm, matchtype 1)."""
    n_obs, p = x_obs.shape
    xtx = x_obs.T @ x_obs
    xtx = xtx + np.diag(np.diag(xtx) * RIDGE)
    inv = np.linalg.inv(xtx)
    beta = inv @ (x_obs.T @ y_obs)
    resid = y_obs - x_obs @ beta
    df = max(n_obs - p, 1)
    sigma = math.sqrt(float(resid @ resid) / float(rng.chisquare(df)))
    chol = np.linalg.cholesky((inv + inv.T) / 2.0)
    beta_dot = beta + sigma * (chol @ rng.standard_normal(p))
    yhat_obs = x_obs @ beta
    yhat_mis = x_mis @ beta_dot
    order = np.argsort(yhat_obs, kind="stable")
    sorted_hat = yhat_obs[order]
    d = min(DONORS, n_obs)
    width = min(2 * d, n_obs)
    pos = np.searchsorted(sorted_hat, yhat_mis)
    start = np.clip(pos - d, 0, n_obs - width)
    window = start[:, None] + np.arange(width)[None, :]  # the d nearest lie in here
    dist = np.abs(sorted_hat[window] - yhat_mis[:, None])
    dist = dist + rng.random(dist.shape) * 1e-12 * (1.0 + np.abs(yhat_mis[:, None]))  # ties
    nearest = np.argpartition(dist, d - 1, axis=1)[:, :d]
    pick = nearest[np.arange(len(yhat_mis)), rng.integers(0, d, size=len(yhat_mis))]
    return np.asarray(y_obs[order[window[np.arange(len(yhat_mis)), pick]]], dtype=float)


def _chain(
    values: np.ndarray[Any, Any],
    missing: np.ndarray[Any, Any],
    extra: np.ndarray[Any, Any],
    max_iter: int,
    rng: np.random.Generator,
) -> np.ndarray[Any, Any]:
    """One completed copy of ``values`` (rows x numeric columns) by chained PMM."""
    filled = values.copy()
    targets = [j for j in range(values.shape[1]) if missing[:, j].any()]
    for j in targets:  # start from random draws of the observed values (mice's default)
        obs = values[~missing[:, j], j]
        filled[missing[:, j], j] = rng.choice(obs, size=int(missing[:, j].sum()))
    ones = np.ones((values.shape[0], 1))
    for _ in range(max_iter):
        for j in targets:
            x = np.hstack([ones, np.delete(filled, j, axis=1), extra])
            m = missing[:, j]
            keep = np.ptp(x[~m], axis=0) > 0  # drop predictors constant where y is observed
            keep[0] = True  # (as mice removes constant predictors); keep the intercept
            filled[m, j] = _pmm(values[~m, j], x[~m][:, keep], x[m][:, keep], rng)
    return filled


def impute(
    df: pd.DataFrame,
    columns: Sequence[str],
    m: int = 20,
    rng: np.random.Generator | int | None = None,
    by: str | None = None,
    max_iter: int = 10,
) -> list[pd.DataFrame]:
    """m completed copies of ``df`` by chained equations with predictive mean matching.

    ``columns`` is the imputation model: each numeric column with missing values is
    imputed from all the others (numeric as they are, fully observed non-numeric ones
    dummy-coded); other columns of ``df`` are carried over unchanged. Each missing value
    of column j is drawn by PMM: beta_hat = (X'X + ridge)^-1 X'y on the observed rows,
    sigma*^2 = RSS / chi2(n_obs - p), beta* ~ N(beta_hat, sigma*^2 (X'X)^-1); the five
    observed rows whose X beta_hat is nearest to X beta* of the missing row are donors and
    one of them, at random, gives its observed value. Starting values are random draws of
    the observed values; the columns are visited in order ``max_iter`` times; each of the
    m copies is its own chain. With ``by`` the whole procedure runs separately within
    each level of ``by`` (imputation within arm). ``rng``: a numpy Generator or an int seed
    (required); the same seed gives the same copies.

    Parameters
    ----------
    df : DataFrame
        The data; columns not in ``columns`` are copied unchanged.
    columns : sequence of str
        The imputation model: numeric columns with missing values are imputed; every column
        predicts the others.
    m : int
        Number of completed copies (at least 2).
    rng : numpy.random.Generator or int
        The source of randomness (required).
    by : str, optional
        Impute separately within each level of this fully observed column (the arm).
    max_iter : int
        Passes through the columns per chain.

    Returns
    -------
    list of DataFrame
        ``m`` completed copies of ``df`` (same index and columns).

    Raises
    ------
    StatsInputError
        Missing values in a non-numeric column, a column with fewer than two observed values
        (within a level of ``by``), m < 2, no ``rng``.
    """
    where = "impute"
    gen = generator(rng, where)
    require_columns(df, [*columns, by], where)
    if m < 2 or max_iter < 1:
        raise StatsInputError(
            f"{where}: m = {m}, max_iter = {max_iter}; expected m >= 2, max_iter >= 1"
        )
    if by is not None and by in columns:
        raise StatsInputError(
            f"{where}: {by!r} is both in columns and by; expected one or the other"
        )
    numeric = [
        c
        for c in columns
        if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
    ]
    categorical = [c for c in columns if c not in numeric]
    for c in categorical:
        if df[c].isna().any():
            raise StatsInputError(
                f"{where}: non-numeric column {c!r} has {int(df[c].isna().sum())} missing value(s); "
                "expected missing values only in numeric columns (PMM imputes numbers)"
            )
    values = df[numeric].to_numpy(dtype=float)
    infinite = np.isinf(values)
    if infinite.any():
        i, j = (int(v[0]) for v in np.nonzero(infinite))
        raise StatsInputError(
            f"{where}: column {numeric[j]!r} holds {float(values[i, j])!r} (row {df.index[i]!r}; "
            f"{int(infinite[:, j].sum())} infinite value(s)); expected finite numbers or missing "
            "values to impute"
        )
    missing = np.isnan(values)
    if categorical:
        extra = pd.concat(
            [
                pd.get_dummies(df[c].astype(str), prefix=c, drop_first=True, dtype=float)
                for c in categorical
            ],
            axis=1,
        )
        extra_values = extra.to_numpy(dtype=float)
    else:
        extra_values = np.zeros((len(df), 0))
    if by is None:
        parts = [np.arange(len(df))]
        names: list[Any] = ["all rows"]
    else:
        levels, codes = group_levels(df, by, where)
        parts = [np.flatnonzero(codes == j) for j in range(len(levels))]
        names = [f"{by} = {v!r}" for v in levels]
    for part, name in zip(parts, names, strict=True):
        n_obs = (~missing[part]).sum(axis=0)
        for j, c in enumerate(numeric):
            if missing[part, j].any() and n_obs[j] < 2:
                raise StatsInputError(
                    f"{where}: column {c!r} has {int(n_obs[j])} observed value(s) in {name}; "
                    "expected at least two to impute from"
                )
    completed = [values.copy() for _ in range(m)]
    for part in parts:
        if not missing[part].any():
            continue
        for copy in completed:
            copy[part] = _chain(values[part], missing[part], extra_values[part], max_iter, gen)
    out = []
    for copy in completed:
        frame = df.copy()
        for j, c in enumerate(numeric):
            if missing[:, j].any():
                frame[c] = copy[:, j]
        out.append(frame)
    return out


@dataclass(frozen=True, repr=False)
class Pooled(Result):
    """Rubin's rules: pooled estimate, variances, Barnard-Rubin df, CI and p."""

    m: int
    estimate: float
    within: float
    between: float
    total: float
    se: float
    df: float
    ci: tuple[float, float]
    pvalue: float
    riv: float
    lambda_: float
    fmi: float


def pool(
    estimates: Sequence[float],
    variances: Sequence[float],
    n: float | None = None,
    k: int = 1,
) -> Pooled:
    """Combine m estimates and their variances by Rubin's rules (as ``mice::pool.scalar``).

    q_bar = mean(Q), U_bar = mean(U), B = var(Q) (m - 1 divisor), T = U_bar + (1 + 1/m) B,
    r = (1 + 1/m) B / U_bar, lambda = (1 + 1/m) B / T (floored at 1e-4 as mice). Degrees of
    freedom (Barnard & Rubin 1999) with nu_com = n - k complete-data df:
    nu_old = (m - 1) / lambda^2, nu_obs = (nu_com + 1) / (nu_com + 3) nu_com (1 - lambda),
    nu = nu_old nu_obs / (nu_old + nu_obs); n None means nu_com infinite and nu = nu_old.
    fmi = (r + 2 / (nu + 3)) / (r + 1). CI q_bar +- t(nu, 0.975) sqrt(T), p two-sided from t.

    Parameters
    ----------
    estimates, variances : sequence of float
        Q_l and U_l from each of the m >= 2 completed data sets (equal length, finite).
    n : float, optional
        Number of observations of the complete data (None: large-sample df).
    k : int
        Number of parameters of the complete-data model (nu_com = n - k).

    Returns
    -------
    Pooled
        ``m``, ``estimate`` (q_bar), ``within`` (U_bar), ``between`` (B), ``total`` (T), ``se``,
        ``df`` (nu), ``ci``, ``pvalue``, ``riv`` (r), ``lambda_``, ``fmi`` and ``summary``.

    Raises
    ------
    StatsInputError
        Fewer than two estimates, unequal lengths, non-finite values, n - k < 1, T = 0.
    """
    where = "pool"
    q = np.asarray(estimates, dtype=float)
    u = np.asarray(variances, dtype=float)
    if q.ndim != 1 or q.shape != u.shape or len(q) < 2:
        raise StatsInputError(
            f"{where}: got {q.size} estimate(s) and {u.size} variance(s); expected two equal-length "
            "sequences of at least two (m >= 2)"
        )
    if not (np.isfinite(q).all() and np.isfinite(u).all() and (u >= 0).all()):
        raise StatsInputError(
            f"{where}: got estimates {q.tolist()} and variances {u.tolist()}; expected finite numbers, variances >= 0"
        )
    if n is not None and not n - k >= 1:
        raise StatsInputError(f"{where}: n = {n}, k = {k}; expected n - k >= 1 complete-data df")
    m = len(q)
    qbar, ubar, b = float(q.mean()), float(u.mean()), float(q.var(ddof=1))
    t = ubar + (1.0 + 1.0 / m) * b
    if t <= 0:
        raise StatsInputError(
            f"{where}: the total variance is 0 (all estimates equal, all variances 0); expected a positive variance"
        )
    riv = (1.0 + 1.0 / m) * b / ubar if ubar > 0 else float("inf")
    lam = max((1.0 + 1.0 / m) * b / t, 1e-4)
    dfold = (m - 1) / lam**2
    if n is None or math.isinf(n):
        df = dfold
    else:
        dfcom = float(n) - k
        dfobs = (dfcom + 1.0) / (dfcom + 3.0) * dfcom * (1.0 - lam)
        df = dfold * dfobs / (dfold + dfobs)
    fmi = (riv + 2.0 / (df + 3.0)) / (riv + 1.0) if math.isfinite(riv) else 1.0
    se = math.sqrt(t)
    half = float(sps.t.ppf(0.975, df)) * se
    p = float(2.0 * sps.t.sf(abs(qbar) / se, df))
    summary = pd.DataFrame(
        {
            "estimate": [qbar],
            "se": [se],
            "lower": [qbar - half],
            "upper": [qbar + half],
            "df": [df],
            "p": [p],
            "fmi": [fmi],
        },
        index=pd.Index(["pooled"]),
    )
    return Pooled(
        method=f"Rubin's rules over m = {m} imputations, Barnard-Rubin df",
        n=int(n) if n is not None and math.isfinite(n) else 0,
        summary=summary,
        m=m,
        estimate=qbar,
        within=ubar,
        between=b,
        total=t,
        se=se,
        df=df,
        ci=(qbar - half, qbar + half),
        pvalue=p,
        riv=riv,
        lambda_=lam,
        fmi=fmi,
    )


def ancova_arm_effect(
    outcome: str,
    arm: str,
    baseline: str | None,
    covariates: Sequence[str],
    cluster: str | None = None,
    reference: Mapping[str, Any] | None = None,
) -> Analyse:
    """The default analysis: ``compare_arms(..., method="ancova")`` on one data set.

    outcome = b0 + b1 [arm = comparison] + b2 baseline + covariates' c + error by OLS (R's
    ``lm``); returns (b1, its squared SE): the model-based SE, or the cluster-robust (CR1)
    one when ``cluster`` is given, exactly as ``stats.compare_arms`` reports them.
    """

    def analyse(frame: pd.DataFrame) -> tuple[float, float]:
        fit = compare_arms(
            frame,
            outcome,
            arm,
            baseline=baseline,
            covariates=covariates,
            cluster=cluster,
            method="ancova",
            reference=reference,
        )
        return fit.estimate, fit.se**2

    return analyse


@dataclass(frozen=True)
class CompleteCase:
    """The complete-case analysis (the sensitivity analysis): t interval on n_cc - k df."""

    estimate: float
    se: float
    ci: tuple[float, float]
    pvalue: float
    n: int


@dataclass(frozen=True, repr=False)
class MIResult(Result):
    """Arm effect pooled over m imputations, with the complete-case estimate alongside."""

    levels: tuple[Any, Any]
    estimate: float
    se: float
    ci: tuple[float, float]
    pvalue: float
    df: float
    fmi: float
    pooled: Pooled
    complete_case: CompleteCase
    n_missing: int
    #: rows left out because their outcome is not yet due (``due=``): neither imputed nor
    #: counted in ``n_missing``
    n_not_yet_reached: int = 0

    def __str__(self) -> str:
        text = super().__str__()
        if self.n_not_yet_reached:
            text += (
                f"\n{self.n_not_yet_reached} row(s) not yet reached (outcome not yet due): "
                "not imputed, not analysed"
            )
        return text


def mi_compare_arms(
    df: pd.DataFrame,
    outcome: str,
    arm: str,
    baseline: str | None = None,
    covariates: Sequence[str] = (),
    m: int = 20,
    rng: np.random.Generator | int | None = None,
    analyse: Analyse | None = None,
    reference: Mapping[str, Any] | None = None,
    cluster: str | None = None,
    *,
    due: str | None = None,
) -> MIResult:
    """Arm effect on ``outcome`` under multiple imputation, complete case as sensitivity.

    ``impute(df, [outcome, baseline, *covariates], m, rng, by=arm)`` (imputation within
    arm, so every association may differ by arm), then ``analyse`` on each completed data
    set, then ``pool`` with n = rows and k = parameters of outcome ~ arm + baseline +
    covariates. ``analyse(frame) -> (estimate, variance)``; the default is
    ``compare_arms(frame, outcome, arm, baseline, covariates, cluster, method="ancova")``
    (``ancova_arm_effect``): OLS of outcome on arm + baseline + covariates, model-based SE
    (R's ``lm``), or the cluster-robust CR1 SE when ``cluster`` is given. The same
    ``analyse`` on the rows with every model column observed is the complete-case estimate
    (t interval on n_cc - k df; with ``cluster``, G_cc - 1 df as ``compare_arms``, and the
    complete-data df of the Barnard–Rubin formula is G - 1). The arm's second level (as
    ``compare_arms``: a Categorical's order, else sorted; or the one that is not
    ``reference["arm"]``) is compared with the first. Rows missing the arm or the cluster
    (neither is imputed) are dropped and counted in ``n_dropped``.

    Parameters
    ----------
    df : DataFrame
        One row per child; missing values in ``outcome``, ``baseline`` and ``covariates``
        (numeric) are imputed.
    outcome, arm : str
        The outcome and the arm (two levels, fully observed).
    baseline : str, optional
        The baseline measure of the outcome.
    covariates : sequence of str
        Further predictors of the imputation and analysis models.
    m : int
        Number of imputations.
    rng : numpy.random.Generator or int
        The source of randomness (required).
    analyse : callable, optional
        ``analyse(frame) -> (estimate, variance)``; default ``compare_arms(method="ancova")``.
    reference : mapping, optional
        Reference levels of the arm and categorical covariates, e.g. ``{"arm": "SAU"}``.
    cluster : str, optional
        The cluster column (family) for the default analysis's CR1 SE.
    due : str, optional
        A boolean column, False for the rows whose outcome is not yet due (its visit window
        has not closed: ``noim.extract.followup``).  Those rows, when their outcome is
        missing, are *not yet reached*: left out before anything else (neither imputed, nor
        analysed, nor counted in ``n_missing``; counted in ``n_not_yet_reached``).  A row
        whose outcome is observed is used whatever ``due`` says.  A row missing ``due`` is
        dropped (``n_dropped``, as the arm and the cluster).  Without ``due`` every missing
        outcome is imputed.

    Returns
    -------
    MIResult
        ``estimate``, ``se``, ``ci``, ``pvalue``, ``df``, ``fmi`` (pooled), ``pooled``
        (``Pooled``), ``complete_case`` (estimate, se, ci, pvalue, n), ``levels``,
        ``n_missing``, ``n_not_yet_reached`` and ``summary`` (one row per analysis).

    Raises
    ------
    StatsInputError
        Not exactly two arms, fewer than two complete rows in an arm, m < 2, no ``rng``, a
        missing column, a ``due`` column with non-boolean values.
    """
    where = "mi_compare_arms"
    gen = generator(rng, where)
    adjust = [c for c in (baseline, *covariates) if c is not None]
    require_columns(df, [outcome, arm, *adjust, cluster, due], where)
    refs = references(reference, [arm, *covariates], where)
    df, n_dropped, dropped_by_column = complete_cases(df, [arm, cluster, due], where)
    waiting = 0
    if due is not None:
        reached = _due_flags(df, due, where) | df[outcome].notna().to_numpy()
        waiting = int((~reached).sum())
        df = df.loc[reached]
        require_columns(df, [outcome], f"{where} (rows whose outcome is due)")
    levels, codes = two_arms(df, arm, where, refs.get(arm))
    clusters = None if cluster is None else group_levels(df, cluster, where)[1]
    model_columns = [outcome, *adjust]
    observed = df[model_columns].notna().all(axis=1).to_numpy()
    if analyse is None:
        analyse = ancova_arm_effect(outcome, arm, baseline, covariates, cluster, refs)
    cc_rows = df.loc[observed]
    k = (
        arm_matrix(cc_rows, arm, levels, adjust, where, reference=refs).shape[1]
        if len(cc_rows)
        else 2 + len(adjust)
    )
    per_arm = np.bincount(codes[observed], minlength=2)
    if per_arm.min() < 2 or len(cc_rows) <= k:
        raise StatsInputError(
            f"{where}: {per_arm[0]} and {per_arm[1]} complete rows in arms {levels[0]!r} and "
            f"{levels[1]!r} for {k} parameters; expected at least two complete rows per arm "
            "and more rows than parameters"
        )
    est, var = analyse(cc_rows)
    if clusters is None:
        cc_df, n_pool, k_pool = len(cc_rows) - k, len(df), k
    else:  # clustered: G - 1 complete-data df, as compare_arms
        cc_df = int(np.unique(clusters[observed]).size) - 1
        n_pool, k_pool = int(clusters.max()) + 1, 1
    half = float(sps.t.ppf(0.975, cc_df)) * math.sqrt(var)
    complete = CompleteCase(
        estimate=est,
        se=math.sqrt(var),
        ci=(est - half, est + half),
        pvalue=float(2.0 * sps.t.sf(abs(est) / math.sqrt(var), cc_df)),
        n=len(cc_rows),
    )
    completed = impute(df, model_columns, m=m, rng=gen, by=arm)
    results = [analyse(frame) for frame in completed]
    pooled = pool([r[0] for r in results], [r[1] for r in results], n=n_pool, k=k_pool)
    term = f"{arm}[T.{levels[1]}]"
    summary = pd.DataFrame(
        {
            "term": [term, term],
            "estimate": [pooled.estimate, complete.estimate],
            "se": [pooled.se, complete.se],
            "lower": [pooled.ci[0], complete.ci[0]],
            "upper": [pooled.ci[1], complete.ci[1]],
            "df": [pooled.df, float(cc_df)],
            "p": [pooled.pvalue, complete.pvalue],
            "n": [len(df), complete.n],
        },
        index=pd.Index([f"multiple imputation (m = {m})", "complete case"], name="analysis"),
    )
    return MIResult(
        method=f"multiple imputation (PMM within arm, m = {m}) pooled by Rubin's rules; complete case alongside",
        n=len(df),
        summary=summary,
        levels=(levels[0], levels[1]),
        estimate=pooled.estimate,
        se=pooled.se,
        ci=pooled.ci,
        pvalue=pooled.pvalue,
        df=pooled.df,
        fmi=pooled.fmi,
        pooled=pooled,
        complete_case=complete,
        n_missing=int((~observed).sum()),
        n_not_yet_reached=waiting,
        n_dropped=n_dropped,
        dropped_by_column=dropped_by_column,
    )


def _due_flags(df: pd.DataFrame, due: str, where: str) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """``df[due]`` (no missing value left: ``complete_cases``) as booleans, refusing anything
    but True/False (or 1/0)."""
    series = df[due]
    values = series.astype(object)
    bad = values[~values.isin([True, False])]
    if len(bad):
        raise StatsInputError(
            f"{where}: column {due!r} holds {bad.iloc[0]!r} (row {bad.index[0]!r}); "
            "expected True (outcome due) or False (not yet due)"
        )
    flags: np.ndarray[Any, np.dtype[np.bool_]] = series.astype(bool).to_numpy(dtype=bool)
    return flags
