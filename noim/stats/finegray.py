"""Fine–Gray proportional subdistribution hazards regression.

The subdistribution hazard of cause k, lambda_k(t | Z) = lambda_0(t) exp(beta'Z), is fitted
by maximising the weighted partial likelihood of Fine & Gray (1999):

    l(beta) = sum over cause-k events i of [beta'Z_i - log S0(X_i)],
    S0(t) = sum_j w_j(t) exp(beta'Z_j),

where w_j(t) = 1 while X_j >= t, w_j(t) = G(t-) / G(X_j-) for t > X_j when subject j had a
competing event, and 0 after censoring; G is the Kaplan–Meier estimate of the censoring
distribution (left-continuous, G(t-)).  Tied event times: Breslow, as ``cmprsk::crr``.  The
variance is the sandwich I^-1 (sum_i (eta_i + psi_i)^2) I^-1 with psi_i the term for the
estimated censoring weights (what ``crr`` reports).  All sums over risk sets are sorted
cumulative sums: O(n log n).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from noim.stats._base import (
    Result,
    StatsInputError,
    complete_cases,
    event_column,
    numeric_column,
)
from noim.stats.design import covariate_matrix

Array = np.ndarray[Any, np.dtype[Any]]  # float64 arrays (bincount results type as int)
IntArray = np.ndarray[Any, np.dtype[np.int64]]

_Z = float(sps.norm.ppf(0.975))


def _suffix(x: Array) -> Array:
    """Sum over the entries at and after each index (axis 0)."""
    return np.cumsum(x[::-1], axis=0)[::-1]


def _prefix(x: Array) -> Array:
    """Sum over the entries strictly before each index (axis 0)."""
    c = np.cumsum(x, axis=0)
    return np.concatenate([np.zeros((1, *x.shape[1:])), c[:-1]], axis=0)


@dataclass(frozen=True)
class _Data:
    z: Array  # (n, p) covariates, centred
    inv: IntArray  # each row's distinct-time index
    m: int  # number of distinct times
    ev: Array  # 1 for a cause-k event
    comp: Array  # 1 for a competing event
    cens: Array  # 1 for censored
    g_minus: Array  # censoring KM G(t-) at each distinct time
    n_risk: Array  # number with X >= t at each distinct time
    n_cens: Array  # censorings at each distinct time
    d_k: Array  # cause-k events at each distinct time


def _prepare(time: Array, cause: IntArray, z: Array, k: int) -> _Data:
    ut, inv = np.unique(time, return_inverse=True)
    m = len(ut)
    cens = (cause == 0).astype(float)
    ev = (cause == k).astype(float)
    comp = ((cause > 0) & (cause != k)).astype(float)
    total = np.bincount(inv, minlength=m).astype(float)
    n_cens = np.bincount(inv, weights=cens, minlength=m)
    n_risk = _suffix(total)
    g = np.cumprod(1.0 - n_cens / n_risk)
    g_minus = np.concatenate([[1.0], g[:-1]])
    d_k = np.bincount(inv, weights=ev, minlength=m)
    zc = z - z.mean(axis=0)
    return _Data(zc, inv, m, ev, comp, cens, g_minus, n_risk, n_cens, d_k)


def _sums(data: _Data, beta: Array) -> tuple[Array, Array, Array, Array]:
    """S0, S1, S2 at each distinct time, and exp(beta'Z)."""
    z, inv, m = data.z, data.inv, data.m
    p = z.shape[1]
    r = np.exp(z @ beta)
    # at risk (X_j >= t): weight 1
    w_now = r
    # competing events before t: weight G(t-)/G(X_j-)
    w_comp = data.comp * r / data.g_minus[inv]

    def agg(w: Array) -> tuple[Array, Array, Array]:
        s0 = np.bincount(inv, weights=w, minlength=m)
        s1 = np.stack([np.bincount(inv, weights=w * z[:, a], minlength=m) for a in range(p)], 1)
        zz = (z[:, :, None] * z[:, None, :]).reshape(len(z), p * p)
        s2 = np.stack(
            [np.bincount(inv, weights=w * zz[:, a], minlength=m) for a in range(p * p)], 1
        )
        return s0, s1, s2

    a0, a1, a2 = agg(w_now)
    c0, c1, c2 = agg(w_comp)
    gm = data.g_minus
    s0 = _suffix(a0) + gm * _prefix(c0)
    s1 = _suffix(a1) + gm[:, None] * _prefix(c1)
    s2 = (_suffix(a2) + gm[:, None] * _prefix(c2)).reshape(m, p, p)
    return s0, s1, s2, r


def _newton(data: _Data, names: list[str], where: str) -> tuple[Array, Array, int]:
    p = data.z.shape[1]
    beta = np.zeros(p)
    evt = data.d_k > 0

    def parts(b: Array) -> tuple[float, Array, Array]:
        s0, s1, s2, _ = _sums(data, b)
        d, s0e, s1e, s2e = data.d_k[evt], s0[evt], s1[evt], s2[evt]
        zbar = s1e / s0e[:, None]
        ll = float((data.ev * (data.z @ b)).sum() - (d * np.log(s0e)).sum())
        score = (data.ev[:, None] * data.z).sum(axis=0) - (d[:, None] * zbar).sum(axis=0)
        info = (
            d[:, None, None] * (s2e / s0e[:, None, None] - zbar[:, :, None] * zbar[:, None, :])
        ).sum(axis=0)
        return ll, score, info

    ll, score, info = parts(beta)
    scale = data.z.std(axis=0)
    for it in range(1, 101):
        try:
            step = np.linalg.solve(info, score)
        except np.linalg.LinAlgError:
            raise StatsInputError(
                f"{where}: the information matrix is singular for covariates {names!r}; expected "
                "covariates that vary among subjects at risk at the events (collinear dummies?)"
            ) from None
        new = beta + step
        ll_new, s_new, i_new = parts(new)
        halvings = 0
        while (not np.isfinite(ll_new) or ll_new < ll - 1e-12) and halvings < 30:
            step /= 2.0
            new = beta + step
            ll_new, s_new, i_new = parts(new)
            halvings += 1
        beta, ll, score, info = new, ll_new, s_new, i_new
        # |beta| sd(Z) beyond 15 (a hazard ratio of e^15 per sd) is a monotone likelihood:
        # the estimate is infinite (R's coxph warns "beta may be infinite"), refuse it
        if np.any(np.abs(beta) * scale > 15):
            break
        if np.max(np.abs(step)) < 1e-10 * (1.0 + np.max(np.abs(beta))):
            return beta, info, it
    raise StatsInputError(
        f"{where}: the Fine-Gray fit did not converge (coefficients {dict(zip(names, beta, strict=True))!r}); "
        "expected finite estimates (a covariate level with no cause-k events gives an infinite one)"
    )


def _sandwich_meat(data: _Data, beta: Array) -> Array:
    """sum_i (eta_i + psi_i)(eta_i + psi_i)': score residuals plus the censoring-weight term."""
    s0, s1, _, r = _sums(data, beta)
    z, inv = data.z, data.inv
    gm = data.g_minus
    evt = data.d_k > 0
    dlam = np.where(evt, data.d_k / np.where(evt, s0, 1.0), 0.0)
    zbar = s1 / s0[:, None]
    big_l = np.cumsum(dlam)
    big_a = np.cumsum(zbar * dlam[:, None], axis=0)
    lg = np.cumsum(gm * dlam)
    ag = np.cumsum(zbar * (gm * dlam)[:, None], axis=0)
    lg_tail = lg[-1] - lg  # sum over s > X_i
    ag_tail = ag[-1] - ag
    ri = r / gm[inv]
    eta = (
        data.ev[:, None] * (z - zbar[inv])
        - r[:, None] * (z * big_l[inv][:, None] - big_a[inv])
        - (data.comp * ri)[:, None] * (z * lg_tail[inv][:, None] - ag_tail[inv])
    )
    # q(u) = sum_{competing j, X_j < u} r_j / G(X_j-) sum_{s >= u} G(s-) (Z_j - Zbar(s)) dLambda(s)
    w = data.comp * ri
    m = data.m
    p0 = _prefix(np.bincount(inv, weights=w, minlength=m))
    p1 = _prefix(
        np.stack([np.bincount(inv, weights=w * z[:, a], minlength=m) for a in range(z.shape[1])], 1)
    )
    lg_from = lg[-1] - np.concatenate([[0.0], lg[:-1]])  # sum over s >= u
    ag_from = ag[-1] - np.concatenate([np.zeros((1, z.shape[1])), ag[:-1]], axis=0)
    q = p1 * lg_from[:, None] - p0[:, None] * ag_from
    # psi_i = int q(u) / pi(u) dM^c_i(u), dM^c_i = dN^c_i - 1(X_i >= u) dN^c(u) / pi(u)
    qpi = q / data.n_risk[:, None]
    comp_l = np.cumsum(qpi * (data.n_cens / data.n_risk)[:, None], axis=0)
    psi = data.cens[:, None] * qpi[inv] - comp_l[inv]
    u = eta + psi
    return np.asarray(u.T @ u)


@dataclass(frozen=True, repr=False)
class FineGrayResult(Result):
    """A fitted Fine–Gray model.

    ``summary``: index = covariate (dummies ``"col[T.level]"``), columns estimate, se,
    lower, upper (95 %), statistic (z), p, coef, as ``stats.cox``; estimate is the
    subdistribution hazard ratio exp(coef) and se (log scale) the sandwich one including the
    censoring-weight term (``cmprsk::crr``).
    ``var`` the variance matrix, ``naive_var`` the inverse information, ``events`` the
    number of events of ``cause``, ``competing`` of other causes, ``iterations``.
    """

    coef: pd.Series
    var: pd.DataFrame
    naive_var: pd.DataFrame
    cause: int
    events: int
    competing: int
    iterations: int

    def __str__(self) -> str:
        with pd.option_context("display.width", 120, "display.max_columns", 20):
            return self._with_dropped(
                f"{self.method} (n = {self.n}, events of cause {self.cause} = {self.events}, "
                f"competing = {self.competing}), sandwich se with censoring-weight term\n"
                f"{self.summary.to_string()}"
            )


def fine_gray(
    df: pd.DataFrame,
    duration: str,
    event: str,
    covariates: Sequence[str],
    cause: int = 1,
    reference: Mapping[str, Any] | None = None,
) -> FineGrayResult:
    """Fine & Gray (1999) proportional subdistribution hazards model for ``cause``.

    Parameters
    ----------
    df : tidy DataFrame, one row per subject.
    duration : column of follow-up times (non-negative).
    event : column with 0 = censored, 1..k = cause of the event.
    covariates : columns; numeric as they are, categorical (non-numeric dtype) as dummies
        against the first level (a Categorical's first category, else the first sorted),
        named ``"col[T.level]"``.
    cause : the cause whose cumulative incidence is modelled; the others compete.
    reference : optional ``{column: reference level}`` for categorical covariates.

    Returns
    -------
    FineGrayResult with ``summary`` (estimate = subdistribution hazard ratio, se, lower,
    upper, statistic, p, coef), equal to ``cmprsk::crr`` (Breslow ties, censoring weights
    G(t-), sandwich variance).  Rows with a missing value in a column used are dropped and
    counted (``n_dropped``).
    """
    where = "fine_gray"
    if isinstance(covariates, str):
        covariates = [covariates]
    df, n_dropped, dropped_by_column = complete_cases(df, [duration, event, *covariates], where)
    time = numeric_column(df, duration, where, minimum=0.0)
    causes = event_column(df, event, where, causes=True)
    if not isinstance(cause, (int, np.integer)) or cause < 1:
        raise StatsInputError(f"{where}: got cause={cause!r}; expected a whole number 1..k")
    n_events = int((causes == cause).sum())
    if n_events == 0:
        raise StatsInputError(
            f"{where}: column {event!r} has no events of cause {cause} (causes present: "
            f"{sorted(set(causes.tolist()) - {0})}); expected at least one to fit"
        )
    z, names = covariate_matrix(df, covariates, reference, where)
    data = _prepare(time, causes, z, cause)
    beta, info, iterations = _newton(data, names, where)
    inv_info = np.linalg.inv(info)
    var = inv_info @ _sandwich_meat(data, beta) @ inv_info
    se = np.sqrt(np.diag(var))
    zval = beta / se
    summary = pd.DataFrame(
        {
            "estimate": np.exp(beta),
            "se": se,
            "lower": np.exp(beta - _Z * se),
            "upper": np.exp(beta + _Z * se),
            "statistic": zval,
            "p": 2.0 * sps.norm.sf(np.abs(zval)),
            "coef": beta,
        },
        index=pd.Index(names, name="covariate"),
    )
    return FineGrayResult(
        n_dropped=n_dropped,
        dropped_by_column=dropped_by_column,
        method=f"Fine-Gray subdistribution hazards model for cause {cause}",
        n=len(df),
        summary=summary,
        coef=pd.Series(beta, index=names, name="coef"),
        var=pd.DataFrame(var, index=names, columns=names),
        naive_var=pd.DataFrame(inv_info, index=names, columns=names),
        cause=int(cause),
        events=n_events,
        competing=int(((causes > 0) & (causes != cause)).sum()),
        iterations=iterations,
    )
