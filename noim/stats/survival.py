"""Time to event without covariates: Kaplan–Meier, the log-rank test and restricted mean survival.

Each function takes a tidy DataFrame (one row per subject), the name of the follow-up time
column (``duration``, non-negative numbers) and of the event indicator (``event``: 1 = event,
0 = censored) and returns a frozen result.  Conventions follow R's ``survival`` package
(``survfit``, ``survdiff``, ``print(survfit(...), rmean=tau)``); the formulas are written out
in docs/analysis-methods.md (section "Survival").  The Cox model is in :mod:`noim.stats.cox`.
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
    table_text,
)

Array = np.ndarray[Any, np.dtype[np.float64]]

#: Confidence level of every interval in this module (R's default ``conf.int = 0.95``).
LEVEL = 0.95
_Z = float(sps.norm.ppf(0.5 + LEVEL / 2))
#: R's tolerance when it looks for the time the curve crosses 0.5 (``sqrt(.Machine$double.eps)``).
_TOL = float(np.sqrt(np.finfo(float).eps))
_ALL = "all"


@dataclass(frozen=True)
class _Checked:
    """The complete rows, their times, events, group levels and codes, and what was dropped."""

    frame: pd.DataFrame
    times: Array
    events: np.ndarray[Any, np.dtype[np.int64]]
    levels: list[Any]  # ["all"] without a group
    codes: np.ndarray[Any, np.dtype[np.int64]]
    n_dropped: int
    dropped_by_column: dict[str, int]


def _survival_data(
    df: pd.DataFrame,
    duration: str,
    event: str,
    group: str | None,
    where: str,
    reference: Mapping[str, Any] | None,
    strata: str | None = None,
) -> _Checked:
    """Complete rows of the columns used (dropped rows counted), checked times and events,
    group levels (``reference[group]`` first when given) and each row's level code."""
    refs = references(reference, [group], where)
    df, n_dropped, dropped = complete_cases(df, [duration, event, group, strata], where)
    times = numeric_column(df, duration, where, minimum=0.0)
    events = event_column(df, event, where)
    if group is None:
        levels: list[Any] = [_ALL]
        codes = np.zeros(len(df), dtype=np.int64)
    else:
        levels, codes = group_levels(df, group, where, reference=refs.get(group))
    return _Checked(df, times, events, levels, codes, n_dropped, dropped)


def _step_table(times: Array, events: np.ndarray[Any, np.dtype[np.int64]]) -> dict[str, Array]:
    """The product-limit step function at every distinct time (events and censorings).

    At a time with both events and censorings the censored subjects count as at risk (events
    come first), as in R.  ``varh`` is Greenwood's sum ``sum d / (n (n - d))`` (infinite once
    the curve reaches 0).
    """
    utimes, inverse = np.unique(times, return_inverse=True)
    n_event = np.bincount(inverse, weights=events, minlength=len(utimes))
    n_total = np.bincount(inverse, minlength=len(utimes)).astype(float)
    n_risk = np.cumsum(n_total[::-1])[::-1]
    surv = np.cumprod(1.0 - n_event / n_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(n_event > 0, n_event / (n_risk * (n_risk - n_event)), 0.0)
    varh = np.cumsum(term)
    return {
        "time": utimes,
        "n_risk": n_risk,
        "n_event": n_event,
        "n_censor": n_total - n_event,
        "survival": surv,
        "varh": varh,
    }


def _log_bands(surv: Array, varh: Array) -> tuple[Array, Array, Array]:
    """Greenwood SE of S(t) and R's ``conf.type = "log"`` band; NaN where S(t) = 0 (as R's NA)."""
    sdh = np.sqrt(varh)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        se = np.where(surv > 0, surv * sdh, np.nan)
        lower = np.where(surv > 0, surv * np.exp(-_Z * sdh), np.nan)
        upper = np.where(surv > 0, np.minimum(1.0, surv * np.exp(_Z * sdh)), np.nan)
    return se, lower, upper


def _first_below_half(y: Array, x: Array) -> float:
    """R's ``minmin`` (``survival:::survmean``): the median of a step curve as ``print(survfit)``.

    The first time the curve is at or below 0.5; when it sits exactly at 0.5 (within R's
    tolerance) on a flat stretch that later drops, the midpoint of that stretch.  ``inf`` when
    the curve never reaches 0.5 ("not reached"; R prints NA).
    """
    keep = ~np.isnan(y) & (y < 0.5 + _TOL)
    if not keep.any():
        return float("inf")
    xs, ys = x[keep], y[keep]
    if abs(ys[0] - 0.5) < _TOL and (ys < ys[0]).any():
        return float((xs[0] + xs[int(np.argmax(ys < ys[0]))]) / 2)
    return float(xs[0])


@dataclass(frozen=True, repr=False)
class KaplanMeierResult(Result):
    """Kaplan–Meier estimates by group.

    Attributes
    ----------
    table : DataFrame
        The step function: group, time, n_risk, n_event, n_censor, survival, se (Greenwood),
        lower, upper (95 %, R's ``conf.type = "log"``) at every distinct time of each group.
    median : Series
        Median survival time by group (index "all" without a group); ``inf`` = not reached.
    summary : DataFrame
        Per group: n, events, estimate (the median), lower, upper (its 95% CI), as
        ``print(survfit(...))``.
    """

    table: pd.DataFrame
    median: pd.Series
    group: str | None

    def survival_at(self, times: float | Iterable[float]) -> pd.DataFrame:
        """S(t), its Greenwood SE and the log-type 95 % CI at each of ``times`` for each group.

        Before the first time of a group S = 1 with SE 0; after a group's last follow-up time
        the last value is carried forward (as R's ``summary(fit, times, extend = TRUE)``).
        Where S(t) = 0 the SE is 0 and the CI is [0, 0] (R prints NaN / NA).
        """
        values = [times] if isinstance(times, (int, float, np.number)) else list(times)
        ts = np.asarray(values, dtype=float).ravel()
        if np.isnan(ts).any() or (ts < 0).any():
            raise StatsInputError(
                f"survival_at: got times {ts.tolist()!r}; expected non-negative numbers"
            )
        frames = []
        for level, part in self.table.groupby("group", sort=False):
            idx = np.searchsorted(part["time"].to_numpy(), ts, side="right") - 1
            before = idx < 0
            pick = np.maximum(idx, 0)
            cols = {}
            for name, start in (("survival", 1.0), ("se", 0.0), ("lower", 1.0), ("upper", 1.0)):
                values = part[name].to_numpy()[pick]
                cols[name] = np.where(before, start, values)
            frames.append(pd.DataFrame({"group": level, "time": ts, **cols}))
        return pd.concat(frames, ignore_index=True)

    def __str__(self) -> str:
        return self._with_dropped(
            f"{self.method} (n = {self.n}); estimate = median, 95% CI from the log-type band\n"
            f"{table_text(self.summary)}"
        )


def kaplan_meier(
    df: pd.DataFrame,
    duration: str,
    event: str,
    group: str | None = None,
    *,
    reference: Mapping[str, Any] | None = None,
) -> KaplanMeierResult:
    """Kaplan–Meier (product-limit) estimate of survival, by group.

    .. math:: \\hat S(t) = \\prod_{t_j \\le t} (1 - d_j / n_j), \\qquad
              \\widehat{\\mathrm{Var}}\\,\\hat S(t) = \\hat S(t)^2 \\sum_{t_j \\le t} \\frac{d_j}{n_j (n_j - d_j)}

    with :math:`d_j` events and :math:`n_j` at risk at the distinct time :math:`t_j` (subjects
    censored at :math:`t_j` are at risk at :math:`t_j`).  The 95 % CI is R's default
    ``conf.type = "log"``: :math:`\\hat S \\exp(\\pm 1.96\\, \\mathrm{se}(\\log \\hat S))`, capped at 1.
    The median and its CI are read off the curve and the CI band as ``print(survfit(...))``
    does (first time at or below 0.5, midpoint of a flat stretch exactly at 0.5); ``inf``
    means not reached.

    Parameters
    ----------
    df : DataFrame, one row per subject.
    duration : column of follow-up times (non-negative numbers).
    event : column of event indicators (1 = event, 0 = censored).
    group : optional column of groups (levels in a Categorical's order, else sorted); None
        pools all rows ("all").
    reference : optional ``{group: level}`` to list first.

    Returns
    -------
    KaplanMeierResult
        ``table`` (the step function with se, lower, upper), ``median`` (by group),
        ``survival_at(times)`` and ``summary`` (by group: n, events, estimate = the median,
        lower, upper = its 95% CI).  Rows with a missing value are dropped (``n_dropped``).

    Raises
    ------
    StatsInputError
        Negative or missing times, an event column that is not 0/1, a missing column.
    """
    where = "kaplan_meier"
    data = _survival_data(df, duration, event, group, where, reference)
    times, events, levels, codes = data.times, data.events, data.levels, data.codes
    tables, rows = [], []
    medians: dict[Any, float] = {}
    for k, level in enumerate(levels):
        mask = codes == k
        st = _step_table(times[mask], events[mask])
        se, lower, upper = _log_bands(st["survival"], st["varh"])
        med = _first_below_half(st["survival"], st["time"])
        medians[level] = med
        rows.append(
            {
                "n": int(mask.sum()),
                "events": int(events[mask].sum()),
                "estimate": med,
                "lower": _first_below_half(lower, st["time"]),
                "upper": _first_below_half(upper, st["time"]),
            }
        )
        zero = st["survival"] <= 0
        tables.append(
            pd.DataFrame(
                {
                    "group": level,
                    "time": st["time"],
                    "n_risk": st["n_risk"].astype(np.int64),
                    "n_event": st["n_event"].astype(np.int64),
                    "n_censor": st["n_censor"].astype(np.int64),
                    "survival": st["survival"],
                    "se": np.where(zero, 0.0, se),
                    "lower": np.where(zero, 0.0, lower),
                    "upper": np.where(zero, 0.0, upper),
                }
            )
        )
    index = pd.Index(levels, name=group or "group")
    return KaplanMeierResult(
        method="Kaplan-Meier (product-limit), Greenwood SE, log-type 95% CI",
        n=len(data.frame),
        n_dropped=data.n_dropped,
        dropped_by_column=data.dropped_by_column,
        summary=pd.DataFrame(rows, index=index),
        table=pd.concat(tables, ignore_index=True),
        median=pd.Series(medians, name="median").rename_axis(index.name),
        group=group,
    )


@dataclass(frozen=True, repr=False)
class LogrankResult(Result):
    """The log-rank test: ``statistic`` (chi-square), ``df``, ``pvalue``, ``observed`` and
    ``expected`` events by group (summed over strata), ``variance`` (the hypergeometric matrix)."""

    statistic: float
    df: int
    pvalue: float
    observed: pd.Series
    expected: pd.Series
    variance: pd.DataFrame

    def __str__(self) -> str:
        return self._with_dropped(
            f"{self.method} (n = {self.n})\n{table_text(self.summary)}\n"
            f"chi-square {self.statistic:.6g} on {self.df} df, p = {self.pvalue:.4g}"
        )


def logrank(
    df: pd.DataFrame,
    duration: str,
    event: str,
    group: str,
    strata: str | None = None,
    *,
    reference: Mapping[str, Any] | None = None,
) -> LogrankResult:
    """Log-rank test of equal survival across the levels of ``group`` (R's ``survdiff``).

    At each distinct event time :math:`t` (within a stratum) with :math:`d` events among
    :math:`n` at risk, :math:`n_g` of them in group :math:`g`:
    :math:`E_g = \\sum d\\, n_g / n` and
    :math:`V_{gh} = \\sum \\frac{d (n - d)}{n^2 (n - 1)} n_g (n\\,\\delta_{gh} - n_h)`.
    With ``strata`` the sums run within strata and are added.  The statistic is
    :math:`(O - E)' V^{-1} (O - E)` over all groups with :math:`E_g > 0` but the first, on
    (number of such groups - 1) degrees of freedom.  A group with no events keeps the test
    defined (its observed count is 0).

    Parameters
    ----------
    df : DataFrame
        One row per subject.
    duration, event : str
        Follow-up time (>= 0) and event indicator (1 event, 0 censored).
    group : str
        The groups compared (at least two levels).
    strata : str, optional
        Strata within which the sums run.
    reference : mapping, optional
        ``{group: level}`` to list first (the statistic does not depend on the order).

    Returns
    -------
    LogrankResult
        ``statistic`` (chi-square), ``df``, ``pvalue``, ``observed`` and ``expected`` (by
        group), ``variance`` and ``summary``.

    Raises
    ------
    StatsInputError
        A group column with one level, no events at all, invalid times or events.
    """
    where = "logrank"
    data = _survival_data(df, duration, event, group, where, reference, strata)
    df = data.frame
    times, events, levels, codes = data.times, data.events, data.levels, data.codes
    if len(levels) < 2:
        raise StatsInputError(
            f"{where}: column {group!r} has one level ({levels[0]!r}); expected at least two groups"
        )
    if strata is None:
        scodes = np.zeros(len(df), dtype=np.int64)
        n_strata = 1
    else:
        slevels, scodes = group_levels(df, strata, where)
        n_strata = len(slevels)
    k = len(levels)
    observed = np.bincount(codes, weights=events, minlength=k)
    expected = np.zeros(k)
    var = np.zeros((k, k))
    for s in range(n_strata):
        mask = scodes == s
        utimes, inverse = np.unique(times[mask], return_inverse=True)
        cell = inverse * k + codes[mask]
        size = len(utimes) * k
        dead = np.bincount(cell, weights=events[mask], minlength=size).reshape(-1, k)
        total = np.bincount(cell, minlength=size).reshape(-1, k).astype(float)
        at_risk = np.cumsum(total[::-1], axis=0)[::-1]
        d = dead.sum(axis=1)
        n = at_risk.sum(axis=1)
        keep = d > 0
        d, n, at_risk = d[keep], n[keep], at_risk[keep]
        expected += (at_risk * (d / n)[:, None]).sum(axis=0)
        w = np.where(n > 1, d * (n - d) / (n * n * np.maximum(n - 1, 1)), 0.0)
        var += np.diag((w * n) @ at_risk) - (at_risk * w[:, None]).T @ at_risk
    used = expected > 0
    if used.sum() < 2:
        raise StatsInputError(
            f"{where}: {int(observed.sum())} event(s) in {int(used.sum())} group(s) with expected "
            "events; expected events in at least two groups (no events: nothing to compare)"
        )
    diff = (observed - expected)[used][1:]
    vv = var[np.ix_(used, used)][1:, 1:]
    statistic = float(diff @ np.linalg.solve(vv, diff))
    dof = int(used.sum()) - 1
    name = group
    return LogrankResult(
        method="log-rank test" + (f" stratified by {strata}" if strata else ""),
        n=len(df),
        n_dropped=data.n_dropped,
        dropped_by_column=data.dropped_by_column,
        summary=pd.DataFrame(
            {
                "n": np.bincount(codes, minlength=k),
                "observed": observed,
                "expected": expected,
                "(O-E)^2/E": np.where(
                    expected > 0,
                    (observed - expected) ** 2 / np.where(expected > 0, expected, 1),
                    0.0,
                ),
            },
            index=pd.Index(levels, name=name),
        ),
        statistic=statistic,
        df=dof,
        pvalue=float(sps.chi2.sf(statistic, dof)),
        observed=pd.Series(observed, index=pd.Index(levels, name=name), name="observed"),
        expected=pd.Series(expected, index=pd.Index(levels, name=name), name="expected"),
        variance=pd.DataFrame(var, index=levels, columns=levels),
    )


@dataclass(frozen=True, repr=False)
class RMSTResult(Result):
    """Restricted mean survival time up to ``tau``.

    ``summary``: per group n, estimate (the RMST), se, lower, upper (95 %, normal);
    ``difference``: each later level minus the first (second minus first with two groups):
    estimate, se, lower, upper, statistic (z), p; ``tau`` the truncation time used.
    """

    tau: float
    difference: pd.DataFrame

    def __str__(self) -> str:
        text = f"{self.method} (n = {self.n}), tau = {self.tau:g}\n{table_text(self.summary)}"
        if len(self.difference):
            text += f"\n{table_text(self.difference)}"
        return self._with_dropped(text)


def _rmst_one(st: dict[str, Array], tau: float) -> tuple[float, float]:
    """Area under the KM curve on [0, tau] and its variance ``sum_j A_j^2 d_j / (n_j (n_j - d_j))``
    with :math:`A_j = \\int_{t_j}^{\\tau} S(u) du` (R's ``survmean``; survRM2's ``rmst1``)."""
    keep = st["time"] <= tau
    t = np.append(st["time"][keep], tau)
    s = st["survival"][keep]
    n, d = st["n_risk"][keep], st["n_event"][keep]
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(n - d > 0, d / (n * (n - d)), 0.0)
    rect = np.diff(np.concatenate(([0.0], t))) * np.concatenate(([1.0], s))
    tail = np.cumsum(rect[::-1])[::-1][1:]  # A_j: area from t_j to tau
    return float(rect.sum()), float(np.sum(tail**2 * h))


def rmst(
    df: pd.DataFrame,
    duration: str,
    event: str,
    group: str | None = None,
    tau: float | None = None,
    *,
    reference: Mapping[str, Any] | None = None,
) -> RMSTResult:
    """Restricted mean survival time :math:`\\mu(\\tau) = \\int_0^{\\tau} \\hat S(t)\\,dt` by group.

    Variance :math:`\\sum_{t_j \\le \\tau} A_j^2 d_j / (n_j (n_j - d_j))` with
    :math:`A_j = \\int_{t_j}^{\\tau} \\hat S` (Klein & Moeschberger 4.5; the figure
    ``print(survfit(...), rmean = tau)`` prints as se(rmean), and survRM2's).  CI:
    estimate ± 1.96 se.  The difference between groups is each later level minus the first
    (a Categorical's order, else sorted; ``reference={group: level}`` puts a level first),
    se = sqrt of the sum of the variances, two-sided normal p.

    ``tau`` defaults to the smallest of the groups' largest follow-up times (as survRM2); a
    ``tau`` beyond a group's largest follow-up time is refused (the curve is not estimated there).

    Parameters
    ----------
    df : DataFrame
        One row per subject.
    duration, event : str
        Follow-up time (>= 0) and event indicator (1 event, 0 censored).
    group : str, optional
        The groups (levels in a Categorical's order, else sorted); None pools all rows.
    tau : float, optional
        The truncation time (> 0).
    reference : mapping, optional
        ``{group: level}``: the level the others are compared with.

    Returns
    -------
    RMSTResult
        ``summary`` (n, estimate, se, lower, upper by group), ``difference`` (each later level
        minus the first: estimate, se, lower, upper, statistic, p) and ``tau``.  Rows with a
        missing value are dropped (``n_dropped``).

    Raises
    ------
    StatsInputError
        A ``tau`` that is not positive or lies beyond a group's largest follow-up time, invalid
        times or events.
    """
    where = "rmst"
    data = _survival_data(df, duration, event, group, where, reference)
    times, events, levels, codes = data.times, data.events, data.levels, data.codes
    largest = np.array([times[codes == k].max() for k in range(len(levels))])
    if tau is None:
        tau = float(largest.min())
    else:
        tau = float(tau)
        if not np.isfinite(tau) or tau <= 0:
            raise StatsInputError(f"{where}: got tau = {tau!r}; expected a positive number")
        if (largest < tau).any():
            k = int(np.argmax(largest < tau))
            raise StatsInputError(
                f"{where}: got tau = {tau:g} but group {levels[k]!r} is followed up to {largest[k]:g}; "
                f"expected tau at most {largest.min():g} (the shortest group's largest follow-up time)"
            )
    if tau <= 0:
        raise StatsInputError(f"{where}: the largest follow-up time is 0; expected positive times")
    if not (events.astype(bool) & (times <= tau)).any():
        raise StatsInputError(
            f"{where}: column {event!r} has no events up to tau = {tau:g} (all {len(times)} rows "
            "censored there): every RMST would be tau with zero variance and the difference's "
            "z and p undefined; expected at least one event up to tau"
        )
    est, var = np.zeros(len(levels)), np.zeros(len(levels))
    for k in range(len(levels)):
        mask = codes == k
        est[k], var[k] = _rmst_one(_step_table(times[mask], events[mask]), tau)
    se = np.sqrt(var)
    summary = pd.DataFrame(
        {
            "n": np.bincount(codes),
            "estimate": est,
            "se": se,
            "lower": est - _Z * se,
            "upper": est + _Z * se,
        },
        index=pd.Index(levels, name=group or "group"),
    )
    diff_rows = {}
    for k in range(1, len(levels)):
        d = est[k] - est[0]
        s = float(np.sqrt(var[k] + var[0]))
        z = d / s if s > 0 else float("nan")
        diff_rows[f"{levels[k]} - {levels[0]}"] = {
            "estimate": d,
            "se": s,
            "lower": d - _Z * s,
            "upper": d + _Z * s,
            "statistic": z,
            "p": float(2 * sps.norm.sf(abs(z))) if s > 0 else float("nan"),
        }
    difference = pd.DataFrame.from_dict(
        diff_rows, orient="index", columns=["estimate", "se", "lower", "upper", "statistic", "p"]
    )
    return RMSTResult(
        method="restricted mean survival time (area under Kaplan-Meier)",
        n=len(data.frame),
        n_dropped=data.n_dropped,
        dropped_by_column=data.dropped_by_column,
        summary=summary,
        tau=tau,
        difference=difference,
    )
