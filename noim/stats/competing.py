"""Competing risks: Aalen–Johansen cumulative incidence and Gray's k-sample test.

``cumulative_incidence`` estimates, for each group and each cause k = 1..K,

    F_k(t) = sum over event times s <= t of S(s-) d_k(s) / n(s),

with S the Kaplan–Meier estimate of being free of any event, d_k(s) the events of cause k
at s and n(s) the number at risk just before s (ties as cmprsk: all events at a time share
the risk set, censorings at an event time are still at risk).  Its variance is the
estimator printed by ``cmprsk::cuminc``; ``gray_test`` is Gray's (1988) test with rho = 0.
See docs/analysis-methods.md ("Competing risks") for the formulas and references.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
    group_levels,
    numeric_column,
    references,
)

Array = np.ndarray[Any, np.dtype[Any]]  # float64 arrays (bincount results type as int)

Z975 = float(sps.norm.ppf(0.975))


def _div(a: Array, b: Array) -> Array:
    """a / b, with 0 where b is 0 (terms that the formulas multiply by zero anyway)."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    out = np.zeros(a.shape)
    np.divide(a, b, out=out, where=b != 0)
    return out


def _prefix(x: Array) -> Array:
    """Cumulative sum shifted by one along the last axis: sum of the entries before each."""
    c = np.cumsum(x, axis=-1)
    return np.concatenate([np.zeros((*x.shape[:-1], 1)), c[..., :-1]], axis=-1)


@dataclass(frozen=True)
class _Counts:
    """Per distinct time of one group: at risk, events by cause (rows 0..K-1), censored."""

    time: Array
    at_risk: Array
    events: Array  # shape (K, m)
    censored: Array


def _counts(time: Array, cause: np.ndarray[Any, np.dtype[np.int64]], n_causes: int) -> _Counts:
    ut, inv = np.unique(time, return_inverse=True)
    m = len(ut)
    total = np.bincount(inv, minlength=m).astype(float)
    flat = np.bincount(cause * m + inv, minlength=(n_causes + 1) * m).astype(float)
    by_cause = flat.reshape(n_causes + 1, m)
    at_risk = len(time) - _prefix(total)
    return _Counts(ut, at_risk, by_cause[1:], by_cause[0])


def _aalen_johansen(c: _Counts, keep: Array) -> tuple[Array, Array]:
    """CIF per cause and cmprsk's variance at the event times (``keep``: times with events).

    Times with only censorings change neither S nor the CIF, so everything is computed on
    the event times alone.
    """
    y = c.at_risk[keep]
    dk = c.events[:, keep]
    d = dk.sum(axis=0)
    s = np.cumprod(1.0 - d / y)
    s_minus = np.concatenate([[1.0], s[:-1]])
    cif = np.cumsum(dk * (s_minus / y), axis=1)
    # Var F_k(t) = sum_{t_j <= t} [alpha_j^2 dk_j (Y_j - dk_j) + a_j^2 do_j (Y_j - do_j)] / (Y_j^2 (Y_j - 1))
    # with a_j = (F_k(t) - F_k(t_j)) Y_j / (Y_j - d_j), alpha_j = S(t_j-) - a_j, do = d - dk;
    # expanded into cumulative sums so the whole curve costs O(m).
    inv_denom = _div(np.ones_like(y), y * y * (y - 1.0))  # 0 where Y = 1 (the terms are 0)
    do = d - dk
    wk = dk * (y - dk) * inv_denom
    ratio = _div(y, y - d)  # 0 where nobody is left: (F(t) - F(t_j)) is 0 there
    c2w = (wk + do * (y - do) * inv_denom) * (ratio * ratio)
    sw = wk * (s_minus * ratio)
    var = np.cumsum(wk * (s_minus * s_minus), axis=1)
    var -= 2.0 * (cif * np.cumsum(sw, axis=1) - np.cumsum(sw * cif, axis=1))
    var += cif * cif * np.cumsum(c2w, axis=1)
    var -= 2.0 * cif * np.cumsum(c2w * cif, axis=1)
    var += np.cumsum(c2w * cif * cif, axis=1)
    return cif, np.maximum(var, 0.0)


def _loglog_ci(est: Array, var: Array) -> tuple[Array, Array]:
    """cmprsk's interval (print.cuminc / timepoints): est^exp(±z sd / (est log est))."""
    with np.errstate(divide="ignore", invalid="ignore"):
        sd = np.sqrt(var)
        k = Z975 * sd / (est * np.log(est))
        lower = est ** np.exp(-k)
        upper = est ** np.exp(k)
    inside = (est > 0) & (est < 1)
    lower = np.where(inside, lower, est)
    upper = np.where(inside, upper, est)
    return lower, upper


_TABLE_COLUMNS = ("group", "cause", "time", "n_risk", "n_event", "n_censor", "estimate", "variance",
                  "lower", "upper")  # fmt: skip


@dataclass(frozen=True, repr=False)
class CumulativeIncidence(Result):
    """Aalen–Johansen cumulative incidence by group and cause.

    ``table`` holds the step functions (one row per group, cause and distinct event time of
    the group, plus a row at time 0): group, cause, time, n_risk, n_event, n_censor,
    estimate, variance, lower, upper.  ``summary`` gives per group and cause the number of
    subjects and events, the group's last observed time and the final estimate.
    """

    table: pd.DataFrame
    groups: tuple[Any, ...]
    causes: tuple[int, ...]
    last_time: dict[Any, float]

    def at(self, times: Iterable[float] | float) -> pd.DataFrame:
        """Estimates at ``times``: columns group, cause, time, estimate, variance, lower, upper.

        The step function is read at each time (right-continuous).  Beyond a group's last
        observed time (event or censoring) the curve is unknown: estimate, variance and
        limits are NaN there, as in ``cmprsk::timepoints``.  Negative times are refused.
        """
        t = np.atleast_1d(np.asarray(times, dtype=float))
        if np.isnan(t).any() or (t < 0).any():
            raise StatsInputError(
                f"cumulative_incidence.at: got times {t.tolist()!r}; expected non-negative numbers"
            )
        parts = []
        for (g, k), block in self.table.groupby(["group", "cause"], sort=False, observed=True):
            bt = block["time"].to_numpy()
            i = np.searchsorted(bt, t, side="right") - 1
            beyond = t > self.last_time[g]
            row = {c: block[c].to_numpy()[i] for c in ("estimate", "variance", "lower", "upper")}
            for c in row:
                row[c] = np.where(beyond, np.nan, row[c])
            parts.append(pd.DataFrame({"group": g, "cause": k, "time": t, **row}))
        return pd.concat(parts, ignore_index=True)


def cumulative_incidence(
    df: pd.DataFrame,
    duration: str,
    event: str,
    group: str | None = None,
    *,
    reference: Mapping[str, Any] | None = None,
) -> CumulativeIncidence:
    """Aalen–Johansen cumulative incidence of each cause, by group.

    Parameters
    ----------
    df : tidy DataFrame, one row per subject.
    duration : column of follow-up times (non-negative numbers).
    event : column with 0 = censored and 1..K = the cause of the (first) event.
    group : optional column; one curve per level (a Categorical's order, else sorted) and
        cause.
    reference : optional ``{group: level}`` to list first.

    Returns
    -------
    CumulativeIncidence
        ``.at(times)``, ``.table`` (step functions with numbers at risk), ``.summary``.
        Variance: ``cmprsk::cuminc``'s estimator.  Confidence limits (95%) use cmprsk's
        log(-log) transform: F^exp(±1.96 sd / (F log F)); at F = 0 or 1 they equal F.
        Causes are 1..max(event); a cause without events in a group has a zero curve.
        ``summary`` per group and cause: n, events, last_time, estimate, se, variance, lower,
        upper at the group's last time.  Rows with a missing value in a column used are
        dropped and counted (``n_dropped``).
    """
    where = "cumulative_incidence"
    refs = references(reference, [group], where)
    df, n_dropped, dropped_by_column = complete_cases(df, [duration, event, group], where)
    time = numeric_column(df, duration, where, minimum=0.0)
    cause = event_column(df, event, where, causes=True)
    n_causes = int(cause.max())
    if n_causes == 0:
        raise StatsInputError(
            f"{where}: column {event!r} holds only 0 (censored); expected at least one event "
            "(a cause 1..k) to estimate a cumulative incidence"
        )
    if group is None:
        levels: list[Any] = ["all"]
        codes = np.zeros(len(df), dtype=np.int64)
    else:
        levels, codes = group_levels(df, group, where, reference=refs.get(group))
    causes = tuple(range(1, n_causes + 1))
    columns: dict[str, list[Any]] = {c: [] for c in _TABLE_COLUMNS}
    summary = []
    last: dict[Any, float] = {}
    for gi, g in enumerate(levels):
        sel = codes == gi
        n_group = int(sel.sum())
        c = _counts(time[sel], cause[sel], n_causes)
        keep = c.events.sum(axis=0) > 0
        cif, var = _aalen_johansen(c, keep)
        last[g] = float(c.time[-1])
        event_times = c.time[keep]
        # a row at time 0 (estimate 0) starts each curve, unless an event happens at 0
        start = 0 if (len(event_times) and event_times[0] == 0.0) else 1
        pad = np.zeros(start)
        rows = start + len(event_times)
        for ki, k in enumerate(causes):
            est = np.concatenate([pad, cif[ki]])
            v = np.concatenate([pad, var[ki]])
            lo, hi = _loglog_ci(est, v)
            columns["group"].append(np.full(rows, gi, dtype=np.int64))
            columns["cause"].append(np.full(rows, k, dtype=np.int64))
            columns["time"].append(np.concatenate([pad, event_times]))
            columns["n_risk"].append(np.concatenate([pad + n_group, c.at_risk[keep]]))
            columns["n_event"].append(np.concatenate([pad, c.events[ki, keep]]))
            columns["n_censor"].append(np.concatenate([pad, c.censored[keep]]))
            for name, values in (("estimate", est), ("variance", v), ("lower", lo), ("upper", hi)):
                columns[name].append(values)
            summary.append(
                {
                    "group": g,
                    "cause": k,
                    "n": n_group,
                    "events": int(c.events[ki].sum()),
                    "last_time": last[g],
                    "estimate": float(est[-1]),
                    "se": float(np.sqrt(v[-1])),
                    "variance": float(v[-1]),
                    "lower": float(lo[-1]),
                    "upper": float(hi[-1]),
                }
            )
    data = {name: np.concatenate(parts) for name, parts in columns.items()}
    for name in ("n_risk", "n_event", "n_censor"):
        data[name] = data[name].astype(np.int64)
    # the group column is categorical (levels in sorted order): cheap at a million rows
    data["group"] = pd.Categorical.from_codes(data["group"], categories=levels)
    table = pd.DataFrame(data, copy=False)  # no block consolidation: the columns are new
    return CumulativeIncidence(
        n_dropped=n_dropped,
        dropped_by_column=dropped_by_column,
        method="Aalen-Johansen cumulative incidence (variance as cmprsk::cuminc, log(-log) 95% CI)",
        n=len(df),
        summary=pd.DataFrame(summary).set_index(["group", "cause"]),
        table=table,
        groups=tuple(levels),
        causes=causes,
        last_time=last,
    )


@dataclass(frozen=True, repr=False)
class GrayTest(Result):
    """Gray's k-sample test: ``statistic`` (chi-square), ``df`` (groups - 1), ``pvalue``."""

    statistic: float
    df: int
    pvalue: float
    score: pd.Series


def _gray_stratum(
    time: Array, cause: np.ndarray[Any, np.dtype[np.int64]], codes: Any, n_groups: int, k: int
) -> tuple[Array, Array]:
    """Score vector and its covariance for one stratum (all groups), Gray (1988), rho = 0.

    Arrays are (group, time) over the distinct times of the stratum; only the loop over the
    groups (a handful) is in Python.
    """
    ut, inv = np.unique(time, return_inverse=True)
    m = len(ut)
    g = n_groups
    idx = codes * m + inv
    total = np.bincount(idx, minlength=g * m).reshape(g, m).astype(float)
    d1 = np.bincount(idx, weights=(cause == k).astype(float), minlength=g * m).reshape(g, m)
    d2 = np.bincount(idx, weights=((cause > 0) & (cause != k)).astype(float), minlength=g * m)
    d2 = d2.reshape(g, m)
    y = total.sum(axis=1, keepdims=True) - _prefix(total)
    h = _div(d1 + d2, y)
    s = np.cumprod(1.0 - h, axis=1)  # S_l(t)
    s_minus = np.concatenate([np.ones((g, 1)), s[:, :-1]], axis=1)  # S_l(t-)
    f = np.cumsum(s_minus * _div(d1, y), axis=1)
    f_minus = np.concatenate([np.zeros((g, 1)), f[:, :-1]], axis=1)
    # score: observed minus expected events of cause k with the subdistribution risk sets
    # R_l(t) = Y_l(t) (1 - F_l(t-)) / S_l(t-)
    r = _div(y * (1.0 - f_minus), s_minus)
    d1_tot = d1.sum(axis=0)
    score = (d1 - r * _div(d1_tot, r.sum(axis=0))).sum(axis=1)
    # variance under H0 (Gray 1988, section 2, as evaluated by cmprsk): with the
    # "standardised" risk sets rho_l = Y_l / S_l(t-) and the pooled cumulative incidence
    # F0(t) = sum_{s <= t} d1(s) / rho.(s),
    #   D[a, l](t) = rho_a (δ_al - rho_l / rho.)                 (score derivative)
    #   H[a, l](t) = sum_{s <= t} D[a, l](s) d1(s) / (rho.(s) (1 - F0(s-)))
    #   sigma = sum_l sum_t v1 v1' hv1 + v2 v2' hv2, with H+ = H(tau) - H(t) and
    #   v1 = D[., l] + c1 H+[., l], c1 = 1 - (1 - F0(t)) / S_l(t)   (1 where S_l(t) = 0)
    #   hv1 = f1 S_l(t-) d1 / (rho. Y_l),  f1 = 1 - (d1 - 1) / (rho. S_l(t-) - 1)
    #   v2 = c2 H+[., l], c2 = (1 - F0(t)) / S_l(t)
    #   hv2 = f2 S_l(t-)^2 d2_l / Y_l^2,   f2 = 1 - (d2_l - 1) / (Y_l - 1)
    rho = _div(y, s_minus)
    rho_tot = rho.sum(axis=0)
    f0 = np.cumsum(_div(d1_tot, rho_tot))
    f0_minus = np.concatenate([[0.0], f0[:-1]])
    eye = np.eye(g)
    deriv = rho[:, None, :] * (eye[:, :, None] - _div(rho, rho_tot)[None, :, :])
    big_h = np.cumsum(deriv * _div(d1_tot, rho_tot * (1.0 - f0_minus)), axis=2)
    tail = big_h[:, :, -1:] - big_h
    sigma = np.zeros((g, g))
    for lvl in range(g):
        alive = s[lvl] > 0
        c1 = np.where(alive, 1.0 - _div(1.0 - f0, s[lvl]), 1.0)
        f1 = np.where(d1_tot > 1, 1.0 - _div(d1_tot - 1.0, rho_tot * s_minus[lvl] - 1.0), 1.0)
        hv1 = np.where(y[lvl] > 0, f1 * s_minus[lvl] * _div(d1_tot, rho_tot * y[lvl]), 0.0)
        v1 = deriv[:, lvl, :] + c1 * tail[:, lvl, :]
        sigma += (v1 * hv1) @ v1.T
        c2 = np.where(alive, _div(1.0 - f0, s[lvl]), 0.0)
        f2 = np.where(d2[lvl] > 1, 1.0 - _div(d2[lvl] - 1.0, y[lvl] - 1.0), 1.0)
        hv2 = np.where(alive, f2 * s_minus[lvl] ** 2 * _div(d2[lvl], y[lvl] ** 2), 0.0)
        v2 = c2 * tail[:, lvl, :]
        sigma += (v2 * hv2) @ v2.T
    return score, sigma


def gray_test(
    df: pd.DataFrame,
    duration: str,
    event: str,
    group: str,
    cause: int = 1,
    strata: str | None = None,
    *,
    reference: Mapping[str, Any] | None = None,
) -> GrayTest:
    """Gray's (1988) test that the cumulative incidence of ``cause`` is equal across groups.

    The score for group k sums, over event times, the observed events of ``cause`` minus
    those expected from the pooled subdistribution hazard with the group's subdistribution
    risk set R_k(t) = Y_k(t) (1 - F_k(t-)) / S_k(t-) (weight rho = 0).  The chi-square
    statistic uses the first (groups - 1) scores, df = groups - 1.  With ``strata`` the
    scores and covariances are summed over strata (cmprsk's ``strata``).  The variance is
    Gray's asymptotic estimator evaluated under the null hypothesis, discretised as
    ``cmprsk::cuminc`` does (ties included), so the statistic equals cmprsk's ``Tests``;
    see docs/analysis-methods.md.  Causes other than ``cause`` are pooled as competing.
    ``reference={group: level}`` lists that level first (``score``; the test does not depend
    on the order).  ``summary``: statistic, df, p.  Rows with a missing value in a column
    used are dropped and counted (``n_dropped``).
    """
    where = "gray_test"
    refs = references(reference, [group], where)
    df, n_dropped, dropped_by_column = complete_cases(df, [duration, event, group, strata], where)
    time = numeric_column(df, duration, where, minimum=0.0)
    causes = event_column(df, event, where, causes=True)
    levels, codes = group_levels(df, group, where, reference=refs.get(group), at_least=2)
    if not isinstance(cause, (int, np.integer)) or cause < 1:
        raise StatsInputError(f"{where}: got cause={cause!r}; expected a whole number 1..k")
    if not (causes == cause).any():
        raise StatsInputError(
            f"{where}: column {event!r} has no events of cause {cause} (causes present: "
            f"{sorted(set(causes.tolist()) - {0})}); expected at least one to test"
        )
    g = len(levels)
    if strata is None:
        s_levels, s_codes = ["all"], np.zeros(len(df), dtype=np.int64)
    else:
        s_levels, s_codes = group_levels(df, strata, where)
    score = np.zeros(g)
    sigma = np.zeros((g, g))
    for si in range(len(s_levels)):
        sel = s_codes == si
        sc, sg = _gray_stratum(time[sel], causes[sel], codes[sel], g, cause)
        score += sc
        sigma += sg
    z = score[:-1]
    v = sigma[:-1, :-1]
    try:
        stat = float(z @ np.linalg.solve(v, z))
    except np.linalg.LinAlgError:
        raise StatsInputError(
            f"{where}: the score covariance is singular (a group of {group!r} has no one at risk "
            "at any event time of the cause?); expected every group to contribute"
        ) from None
    dof = g - 1
    pvalue = float(sps.chi2.sf(stat, dof))
    summary = pd.DataFrame(
        {"statistic": [stat], "df": [dof], "p": [pvalue]},
        index=pd.Index([cause], name="cause"),
    )
    return GrayTest(
        n_dropped=n_dropped,
        dropped_by_column=dropped_by_column,
        method=f"Gray's test (rho = 0) of cause {cause} across {group!r}"
        + (f", stratified by {strata!r}" if strata else ""),
        n=len(df),
        summary=summary,
        statistic=stat,
        df=dof,
        pvalue=pvalue,
        score=pd.Series(score, index=pd.Index(levels, name=group), name="score"),
    )
