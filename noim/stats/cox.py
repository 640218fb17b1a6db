"""The Cox proportional hazards model (R's ``coxph``), fast: O(n log n) per fit.

The data are sorted by time once; every risk-set sum is a reverse cumulative sum and every
tied block is handled with ``np.add.reduceat`` / ``np.bincount`` over "event entries" (one
entry per event, carrying its rank r = 0..d-1 within its tied block for Efron's correction),
so no Python loop runs over rows, events or event times.  The information matrix is
accumulated as ``X' diag(w C) X - M' M`` (C = cumulative sum of the inverse risk-set sums
over time), which never forms a p x p matrix per observation.  The model, the Efron and
Breslow likelihoods and the robust variance are written out in docs/analysis-methods.md.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from noim.stats._base import (
    Result,
    StatsInputError,
    check_clusters,
    complete_cases,
    event_column,
    group_levels,
    numeric_column,
    table_text,
)
from noim.stats.design import covariate_matrix, is_categorical

Array = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]

#: R's ``coxph.control()`` defaults.
EPS = 1e-9
TOLER_INF = float(np.sqrt(EPS))
MAX_ITER = 20
LEVEL = 0.95
_Z = float(sps.norm.ppf(0.5 + LEVEL / 2))


class CoxConvergenceWarning(UserWarning):
    """A Cox coefficient appears to diverge (monotone likelihood; R: "coefficient may be infinite")."""


@dataclass(frozen=True)
class _Sorted:
    """The data sorted by time, with the tied blocks and the event entries."""

    x: Array  # covariates, centred, sorted by time
    d: Array  # event indicator (float)
    starts: IntArray  # first index of each block of equal times
    block: IntArray  # block index of each row
    ev_blocks: IntArray  # blocks that hold at least one event
    entry: IntArray  # for each event entry, its index in ev_blocks
    frac: Array  # r / d for Efron (r = 0..d-1 within the tied block), 0 for Breslow
    mult: Array  # number of events in each block of ev_blocks


def _prepare(times: Array, events: Array, x: Array, ties: str) -> tuple[_Sorted, IntArray]:
    order = np.argsort(times, kind="stable")
    t = times[order]
    flags = np.empty(len(t), dtype=bool)
    flags[0] = True
    np.not_equal(t[1:], t[:-1], out=flags[1:])
    starts = np.flatnonzero(flags)
    block = np.cumsum(flags) - 1
    d = events[order].astype(float)
    dcount = np.add.reduceat(d, starts)
    ev_blocks = np.flatnonzero(dcount > 0)
    mult = dcount[ev_blocks]
    m_int = mult.astype(np.int64)
    entry = np.repeat(np.arange(len(ev_blocks)), m_int)
    rank = np.arange(len(entry)) - np.repeat(np.cumsum(m_int) - m_int, m_int)
    frac = rank / mult[entry] if ties == "efron" else np.zeros(len(entry))
    xs = x[order]
    xs = xs - xs.mean(axis=0)
    return _Sorted(xs, d, starts, block, ev_blocks, entry, frac, mult), order


def _rcumsum(a: Array) -> Array:
    return np.cumsum(a[::-1], axis=0)[::-1]


@dataclass(frozen=True)
class _Fit:
    loglik: float
    score: Array
    info: Array
    w: Array  # exp(eta - c), sorted
    denom: Array  # per event entry, risk-set sum (same scale as w)
    means: Array  # per event entry, weighted covariate mean M


def _evaluate(s: _Sorted, beta: Array, *, need_info: bool = True) -> _Fit:
    """Partial log-likelihood, score and information at ``beta`` (Efron or Breslow)."""
    eta = s.x @ beta
    c = float(eta.max())
    w = np.exp(eta - c)
    wx = s.x * w[:, None]
    at = s.starts[s.ev_blocks]
    s0 = _rcumsum(w)[at]
    s1 = _rcumsum(wx)[at]
    wd = w * s.d
    a0 = np.add.reduceat(wd, s.starts)[s.ev_blocks]
    a1 = np.add.reduceat(wx * s.d[:, None], s.starts, axis=0)[s.ev_blocks]
    f = s.frac
    denom = s0[s.entry] - f * a0[s.entry]
    numer = s1[s.entry] - f[:, None] * a1[s.entry]
    means = numer / denom[:, None]
    n_events = len(s.entry)
    loglik = float(np.dot(s.d, eta) - np.log(denom).sum() - n_events * c)
    score = s.d @ s.x - means.sum(axis=0)
    if not need_info:
        return _Fit(loglik, score, np.empty((0, 0)), w, denom, means)
    nb = len(s.starts)
    inv = 1.0 / denom
    cb = np.zeros(nb)
    cb[s.ev_blocks] = np.bincount(s.entry, weights=inv, minlength=len(s.ev_blocks))
    gb = np.zeros(nb)
    gb[s.ev_blocks] = np.bincount(s.entry, weights=f * inv, minlength=len(s.ev_blocks))
    weight = w * (np.cumsum(cb)[s.block] - s.d * gb[s.block])
    info = (s.x * weight[:, None]).T @ s.x - means.T @ means
    return _Fit(loglik, score, info, w, denom, means)


def _score_residuals(s: _Sorted, fit: _Fit) -> Array:
    """Score residuals (R's ``residuals(fit, type = "score")``) in sorted order, with Efron weighting.

    For row i in block b(i): ``d_i (x_i - Mbar_b) - w_i sum_{b' <= b} sum_r (x_i - M_{b'r}) / D_{b'r}``
    plus, when row i is an event of a tied block, ``w_i sum_r (r/d) (x_i - M_{br}) / D_{br}``
    (an event of the block counts in its own r-th risk set with weight 1 - r/d).
    """
    nb, p = len(s.starts), s.x.shape[1]
    ne = len(s.ev_blocks)
    inv = 1.0 / fit.denom

    def per_block(weights: Array) -> Array:
        out = np.zeros(nb)
        out[s.ev_blocks] = np.bincount(s.entry, weights=weights, minlength=ne)
        return out

    def per_block_vec(weights: Array, m: Array) -> Array:
        out = np.zeros((nb, p))
        out[s.ev_blocks] = np.stack(
            [np.bincount(s.entry, weights=weights * m[:, j], minlength=ne) for j in range(p)],
            axis=1,
        )
        return out

    h = per_block(inv)
    g = per_block(s.frac * inv)
    q = per_block_vec(inv, fit.means)
    qg = per_block_vec(s.frac * inv, fit.means)
    mbar = np.zeros((nb, p))
    mbar[s.ev_blocks] = (
        per_block_vec(np.ones(len(s.entry)), fit.means)[s.ev_blocks] / s.mult[:, None]
    )
    H = np.cumsum(h)[s.block]
    Q = np.cumsum(q, axis=0)[s.block]
    b = s.block
    w = fit.w
    return (
        s.d[:, None] * (s.x - mbar[b])
        - w[:, None] * (s.x * H[:, None] - Q)
        + (s.d * w)[:, None] * (s.x * g[b][:, None] - qg[b])
    )


@dataclass(frozen=True)
class _Strata:
    """The data split by stratum (R's ``strata()``): one sorted part per stratum with events,
    and the rows of ``df`` each part holds, in its sorted order."""

    parts: list[_Sorted]
    rows: list[IntArray]


@dataclass(frozen=True)
class _StrataFit:
    loglik: float
    score: Array
    info: Array
    fits: list[_Fit]


def _prepare_strata(
    times: Array, events: Array, x: Array, ties: str, codes: IntArray, n_strata: int
) -> _Strata:
    """Sort each stratum by time (strata without events add nothing to the likelihood)."""
    parts, rows = [], []
    for k in range(n_strata):  # loop over strata (a handful: sites), not rows
        idx = np.flatnonzero(codes == k)
        if not events[idx].any():
            continue
        s, order = _prepare(times[idx], events[idx], x[idx], ties)
        parts.append(s)
        rows.append(idx[order])
    return _Strata(parts, rows)


def _evaluate_strata(st: _Strata, beta: Array) -> _StrataFit:
    """The stratified partial likelihood: log-likelihood, score and information summed over
    strata, each stratum with its own risk sets (its own baseline hazard)."""
    fits = [_evaluate(s, beta) for s in st.parts]
    return _StrataFit(
        loglik=float(sum(f.loglik for f in fits)),
        score=np.sum([f.score for f in fits], axis=0),
        info=np.sum([f.info for f in fits], axis=0),
        fits=fits,
    )


@dataclass(frozen=True, repr=False)
class CoxResult(Result):
    """A fitted Cox model.

    ``summary``: index = covariate (dummies named ``"col[T.level]"``), columns estimate
    (the hazard ratio exp(coef)), se (of coef, log scale), lower, upper (95 %, hazard-ratio
    scale), statistic (z), p, coef; se is the robust (sandwich) one when ``cluster`` was
    given (``naive_se`` keeps the model-based one).  ``var`` the variance matrix used,
    ``loglik_null`` / ``loglik`` the partial log-likelihood at beta = 0 and at the estimate,
    ``iterations`` Newton–Raphson iterations, ``ties`` the tie method, ``events`` the number
    of events, ``converged`` False when a coefficient appears infinite (with a warning).
    """

    coef: pd.Series
    var: pd.DataFrame
    naive_se: pd.Series
    loglik_null: float
    loglik: float
    iterations: int
    ties: str
    events: int
    cluster: str | None
    converged: bool
    strata: str | None = None

    def __str__(self) -> str:
        se = "robust (sandwich) se by " + self.cluster if self.cluster else "model-based se"
        lr = 2 * (self.loglik - self.loglik_null)
        return self._with_dropped(
            f"{self.method} (n = {self.n}, events = {self.events}), ties = {self.ties}, {se}\n"
            f"{table_text(self.summary)}\n"
            f"log-likelihood null {self.loglik_null:.6f}, fitted {self.loglik:.6f} "
            f"(likelihood ratio {lr:.4f} on {len(self.coef)} df)"
        )


def cox(
    df: pd.DataFrame,
    duration: str,
    event: str,
    covariates: str | Sequence[str],
    cluster: str | None = None,
    ties: str = "efron",
    reference: Mapping[str, Any] | None = None,
    strata: str | None = None,
) -> CoxResult:
    """Cox proportional hazards regression, as R's ``coxph`` (Newton–Raphson, Efron ties by default).

    .. math:: h(t \\mid x) = h_0(t) \\exp(x'\\beta)

    estimated by maximising the partial likelihood; at a time with d tied events of total
    risk score A among a risk set of total S, Efron's approximation uses the denominators
    :math:`S - (r/d) A`, r = 0..d-1, Breslow's uses S for all d.  Newton–Raphson from
    beta = 0 with step halving; converged when the relative change of the log-likelihood is
    at most 1e-9 (R's ``coxph.control``).  Model-based variance: the inverse information.
    With ``cluster`` the robust variance :math:`V B'B V` (B = score residuals summed by
    cluster, with Efron's weighting for ties; R's ``coxph(..., cluster = id)``) and z, p and
    CI use the robust se.  With ``strata`` each stratum has its own baseline hazard
    :math:`h_{0s}(t)`: risk sets are formed within strata and the partial likelihood is the
    sum over strata (R's ``coxph(Surv(t, e) ~ x + strata(s))``).

    Parameters
    ----------
    df : DataFrame, one row per subject (or per subject-episode with ``cluster``).
    duration, event : follow-up time (non-negative) and event indicator (1 event, 0 censored).
    covariates : column name(s); numeric columns enter as they are, non-numeric ones
        (object, string, category, bool) as dummies against the first level (a
        Categorical's first category, else the first in sorted order), named
        ``"col[T.level]"``.
    cluster : optional column identifying clusters for the robust variance.
    ties : "efron" (default, as R) or "breslow".
    reference : optional ``{column: reference level}`` for categorical covariates, e.g.
        ``{"arm": "SAU"}``.
    strata : optional column whose levels get separate baseline hazards (R's ``strata()``);
        not a covariate (no coefficient).  Strata without events add nothing.

    Returns
    -------
    CoxResult
        ``summary`` (index = covariate; estimate = hazard ratio, se, lower, upper, statistic,
        p, coef), ``coef``, ``var``, ``naive_se``, ``loglik_null``, ``loglik``,
        ``iterations``, ``events``, ``ties``, ``cluster``, ``strata``, ``converged`` and
        ``n_dropped`` (rows dropped for a missing value in a column used).

    Raises
    ------
    StatsInputError
        No events, a constant or collinear covariate, fewer than two clusters.

    Warns
    -----
    CoxConvergenceWarning
        When a coefficient appears infinite (R's "Loglik converged before variable ...");
        the last iterate is returned.
    """
    where = "cox"
    if isinstance(covariates, str):
        covariates = [covariates]
    covariates = list(covariates)
    if not covariates:
        raise StatsInputError(f"{where}: got no covariates; expected at least one column name")
    if ties not in ("efron", "breslow"):
        raise StatsInputError(f"{where}: got ties={ties!r}; expected 'efron' or 'breslow'")
    df, n_dropped, dropped_by_column = complete_cases(
        df, [duration, event, cluster, strata, *covariates], where
    )
    if strata is not None and strata in covariates:
        raise StatsInputError(
            f"{where}: column {strata!r} is both a covariate and the strata; expected it in one "
            "role (a stratum's own baseline hazard absorbs any effect of the column)"
        )
    times = numeric_column(df, duration, where, minimum=0.0)
    events = event_column(df, event, where)
    n_events = int(events.sum())
    if n_events == 0:
        raise StatsInputError(
            f"{where}: column {event!r} has no events (all {len(df)} rows censored); expected at "
            "least one event"
        )
    x, names = covariate_matrix(df, covariates, reference, where)
    if cluster is not None:
        clevels, ccodes = group_levels(df, cluster, where)
        for c in covariates:  # each arm (level of a categorical covariate) needs 2+ clusters
            if is_categorical(df[c]):
                levels, codes = group_levels(df, c, where, reference=(reference or {}).get(c))
                check_clusters(ccodes, codes, levels, cluster, c, where)
        if not any(is_categorical(df[c]) for c in covariates):
            check_clusters(ccodes, None, [], cluster, None, where)
    if strata is None:
        n_strata, scodes = 1, np.zeros(len(df), dtype=np.int64)
    else:
        slevels, scodes = group_levels(df, strata, where)
        n_strata = len(slevels)
    s = _prepare_strata(times, events.astype(float), x, ties, scodes, n_strata)
    p = x.shape[1]

    def solve(info: Array, rhs: Array) -> Array:
        try:
            chol = np.linalg.cholesky(info)
        except np.linalg.LinAlgError:
            raise StatsInputError(
                f"{where}: the information matrix is singular for covariates {names!r}; expected "
                "covariates that are not collinear and vary within risk sets with events"
            ) from None
        return np.asarray(np.linalg.solve(chol.T, np.linalg.solve(chol, rhs)), dtype=np.float64)

    beta = np.zeros(p)
    fit0 = _evaluate_strata(s, beta)
    loglik0 = fit0.loglik
    step = solve(fit0.info, fit0.score)
    new = beta + step
    current = fit0
    halving = False
    converged = False
    iterations = 0
    for iterations in range(1, MAX_ITER + 1):
        trial = _evaluate_strata(s, new)
        if abs(trial.loglik - current.loglik) <= EPS * abs(trial.loglik) and not halving:
            beta, current, converged = new, trial, True
            break
        if iterations == MAX_ITER:
            break
        if trial.loglik < current.loglik:
            halving = True
            new = (new + beta) / 2
        else:
            halving = False
            beta, current = new, trial
            new = beta + solve(trial.info, trial.score)
    var = solve(current.info, np.eye(p))
    # R's check (coxph.fit): the next Newton step |U V| at the estimate is still large.
    infs = np.abs(current.score @ var)
    diverging = [
        names[j]
        for j in range(p)
        if not np.isfinite(infs[j]) or (infs[j] > EPS and infs[j] > TOLER_INF * abs(beta[j]))
    ]
    if not converged or diverging:
        warnings.warn(
            f"{where}: "
            + (
                f"log-likelihood converged before {', '.join(diverging)}; the coefficient(s) may be "
                "infinite (no events in a level, or monotone likelihood)"
                if diverging
                else f"no convergence in {MAX_ITER} iterations"
            ),
            CoxConvergenceWarning,
            stacklevel=2,
        )
    naive_se = np.sqrt(np.diag(var))
    if cluster is not None:
        resid = np.concatenate(
            [_score_residuals(part, f) for part, f in zip(s.parts, current.fits, strict=True)]
        )
        codes = ccodes[np.concatenate(s.rows)]
        summed = np.stack(
            [np.bincount(codes, weights=resid[:, j], minlength=len(clevels)) for j in range(p)],
            axis=1,
        )
        dfbeta = summed @ var
        var = dfbeta.T @ dfbeta
    se = np.sqrt(np.diag(var))
    z = beta / se
    with np.errstate(over="ignore"):  # a diverging coefficient (warned above) gives hr = inf
        hr, hr_lower, hr_upper = np.exp(beta), np.exp(beta - _Z * se), np.exp(beta + _Z * se)
    summary = pd.DataFrame(
        {
            "estimate": hr,
            "se": se,
            "lower": hr_lower,
            "upper": hr_upper,
            "statistic": z,
            "p": 2 * sps.norm.sf(np.abs(z)),
            "coef": beta,
        },
        index=pd.Index(names, name="covariate"),
    )
    return CoxResult(
        n_dropped=n_dropped,
        dropped_by_column=dropped_by_column,
        method=f"Cox proportional hazards ({ties} ties)"
        + (f", stratified by {strata!r}" if strata is not None else ""),
        n=len(df),
        summary=summary,
        coef=pd.Series(beta, index=names, name="coef"),
        var=pd.DataFrame(var, index=names, columns=names),
        naive_se=pd.Series(naive_se, index=names, name="naive_se"),
        loglik_null=loglik0,
        loglik=current.loglik,
        iterations=iterations,
        ties=ties,
        events=n_events,
        cluster=cluster,
        converged=converged and not diverging,
        strata=strata,
    )
