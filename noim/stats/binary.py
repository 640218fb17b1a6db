"""Binary outcomes by arm: risk difference, risk ratio and odds ratio, with cluster adjustment.

Unadjusted measures come from the 2 x 2 table (Wald interval for the risk difference,
log-scale Wald intervals for the risk and odds ratios, Haldane's 0.5 correction when a
cell is zero).  With ``cluster`` the measures are re-estimated by GEE (exchangeable
working correlation, robust sandwich SE, geepack's conventions); with ``covariates`` and
no cluster, by binomial GLM.  See docs/analysis-methods.md, "Binary outcomes".
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps
from statsmodels.tools.sm_exceptions import (
    ConvergenceWarning,
    DomainWarning,
    IterationLimitWarning,
    PerfectSeparationWarning,
)

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
from noim.stats.design import arm_matrix

MEASURES = ("risk_difference", "risk_ratio", "odds_ratio")


def _wald(estimate: float, se: float, log: bool, method: str) -> Effect:
    z = estimate / se
    p = float(2.0 * sps.norm.sf(abs(z)))
    lo, hi = estimate - Z975 * se, estimate + Z975 * se
    if log:
        return Effect(float(np.exp(estimate)), float(np.exp(lo)), float(np.exp(hi)), p, se, method)
    return Effect(estimate, lo, hi, p, se, method)


def _table(
    y: np.ndarray[Any, Any], codes: np.ndarray[Any, Any], where: str
) -> tuple[dict[str, Effect], bool]:
    n = np.bincount(codes, minlength=2).astype(float)
    e = np.bincount(codes, weights=y, minlength=2)
    p0, p1 = e / n
    se_rd = float(np.sqrt(p0 * (1 - p0) / n[0] + p1 * (1 - p1) / n[1]))
    if se_rd == 0.0:
        raise StatsInputError(
            f"{where}: the risks are {p0:g} and {p1:g} with no variation within either arm "
            "(complete separation); expected events and non-events in at least one arm"
        )
    a, b = e[1], n[1] - e[1]
    c, d = e[0], n[0] - e[0]
    corrected = bool(min(a, b, c, d) == 0)
    if corrected:  # Haldane-Anscombe: add 0.5 to every cell
        a, b, c, d = a + 0.5, b + 0.5, c + 0.5, d + 0.5
    n1, n0 = a + b, c + d
    out = {
        "risk_difference": _wald(float(p1 - p0), se_rd, False, "Wald (2x2 table)"),
        "risk_ratio": _wald(
            float(np.log((a / n1) / (c / n0))),
            float(np.sqrt(1 / a - 1 / n1 + 1 / c - 1 / n0)),
            True,
            "log-scale Wald (2x2 table" + (", Haldane 0.5)" if corrected else ")"),
        ),
        "odds_ratio": _wald(
            float(np.log(a * d / (b * c))),
            float(np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)),
            True,
            "log-scale Wald, Woolf (2x2 table" + (", Haldane 0.5)" if corrected else ")"),
        ),
    }
    return out, corrected


#: Fitted risks this close to 0 or 1 mean (quasi-)separation: the coefficients run to infinity.
SEPARATION_TOL = 1e-8


def _fit(
    y: np.ndarray[Any, Any],
    x: pd.DataFrame,
    groups: np.ndarray[Any, Any] | None,
    link: Any,
) -> tuple[float, float, bool]:
    """Arm coefficient and its SE; False when the fit failed, did not converge or separated
    (a fitted risk within ``SEPARATION_TOL`` of 0 or 1)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DomainWarning)  # identity/log links on binomial: intended
        family = sm.families.Binomial(link=link)
        for category in (ConvergenceWarning, IterationLimitWarning, PerfectSeparationWarning):
            warnings.simplefilter("error", category)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            if groups is None:
                res: Any = sm.GLM(y, x, family=family).fit(tol=1e-12, maxiter=200)
            else:
                model = sm.GEE(
                    y, x, groups=groups, family=family, cov_struct=sm.cov_struct.Exchangeable()
                )
                res = model.fit(ddof_scale=0, maxiter=200, ctol=1e-10)
                if not bool(getattr(res, "converged", True)):
                    return np.nan, np.nan, False
        except (
            ConvergenceWarning,
            IterationLimitWarning,
            PerfectSeparationWarning,
            ValueError,
            np.linalg.LinAlgError,
        ):
            return np.nan, np.nan, False
    beta = float(res.params.iloc[1])
    se = float(res.bse.iloc[1])
    mu = np.asarray(res.fittedvalues, dtype=float)
    ok = bool(
        np.isfinite(beta)
        and np.isfinite(se)
        and se > 0
        and (mu > SEPARATION_TOL).all()
        and (mu < 1 - SEPARATION_TOL).all()
    )
    return beta, se, ok


def _separated(
    y: np.ndarray[Any, Any], codes: np.ndarray[Any, Any], levels: Sequence[Any]
) -> dict[str, str]:
    """The measures an arm with no events (RR, OR) or only events (OR) makes infinite or 0."""
    n = np.bincount(codes, minlength=2)
    events = np.bincount(codes, weights=y, minlength=2)
    out: dict[str, str] = {}
    for j in (0, 1):
        if events[j] == 0:
            reason = f"no events in arm {levels[j]!r}"
            out.setdefault("risk_ratio", reason)
            out.setdefault("odds_ratio", reason)
        elif events[j] == n[j]:
            out.setdefault("odds_ratio", f"every row of arm {levels[j]!r} is an event")
    return out


def _adjusted(
    y: np.ndarray[Any, Any],
    x: pd.DataFrame,
    groups: np.ndarray[Any, Any] | None,
    where: str,
    separated: dict[str, str],
) -> dict[str, Effect]:
    fam = sm.families
    kind = "GEE exchangeable, robust SE" if groups is not None else "binomial GLM"
    out: dict[str, Effect] = {}
    nan = float("nan")
    links: list[tuple[str, Any]] = [
        ("risk_difference", fam.links.Identity()),
        ("risk_ratio", fam.links.Log()),
        ("odds_ratio", fam.links.Logit()),
    ]
    for measure, link in links:
        if measure in separated:  # the MLE is infinite: no number to report (Albert & Anderson)
            out[measure] = Effect(
                nan,
                nan,
                nan,
                nan,
                nan,
                f"not estimable: separation ({separated[measure]}; the adjusted "
                f"{measure.replace('_', ' ')} is 0 or infinite)",
            )
            continue
        beta, se, ok = _fit(y, x, groups, link)
        label = f"{kind}, binomial {type(link).__name__.lower()} link"
        if not ok and measure == "risk_ratio":
            # log-binomial failed: modified Poisson (Zou 2004) with the robust sandwich
            beta, se, ok = _fit_poisson_rr(y, x, groups)
            label = f"{kind if groups is not None else 'Poisson GLM, robust SE'}, Poisson log link (log-binomial did not converge)"
        if not ok:  # documented, flagged result: NaN with the reason in .method and .notes
            out[measure] = Effect(
                nan,
                nan,
                nan,
                nan,
                nan,
                f"not estimable: {label} did not converge or separated (fitted risks at 0 or 1)",
            )
            continue
        out[measure] = _wald(beta, se, measure != "risk_difference", label)
    return out


def _fit_poisson_rr(
    y: np.ndarray[Any, Any], x: pd.DataFrame, groups: np.ndarray[Any, Any] | None
) -> tuple[float, float, bool]:
    fam = sm.families.Poisson()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if groups is None:
            res: Any = sm.GLM(y, x, family=fam).fit(cov_type="HC0")
        else:
            res = sm.GEE(
                y, x, groups=groups, family=fam, cov_struct=sm.cov_struct.Exchangeable()
            ).fit(ddof_scale=0, maxiter=200, ctol=1e-10)
    beta, se = float(res.params.iloc[1]), float(res.bse.iloc[1])
    mu = np.asarray(res.fittedvalues, dtype=float)
    ok = np.isfinite(beta) and np.isfinite(se) and se > 0 and (mu > SEPARATION_TOL).all()
    return beta, se, bool(ok)


@dataclass(frozen=True, repr=False)
class BinaryResult(Result):
    """Risks by arm and the three comparisons (second arm against the first)."""

    levels: tuple[Any, Any]
    risks: pd.Series
    unadjusted: dict[str, Effect]
    adjusted: dict[str, Effect] | None
    haldane: bool
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = super().__str__()
        return text + "".join(f"\nnote: {note}" for note in self.notes)

    def _pick(self, measure: str) -> Effect:
        return (self.adjusted or self.unadjusted)[measure]

    @property
    def risk_difference(self) -> Effect:
        """The adjusted comparison when one was fitted, else the 2 x 2 table's."""
        return self._pick("risk_difference")

    @property
    def risk_ratio(self) -> Effect:
        return self._pick("risk_ratio")

    @property
    def odds_ratio(self) -> Effect:
        return self._pick("odds_ratio")


def binary_by_arm(
    df: pd.DataFrame,
    outcome: str,
    arm: str,
    cluster: str | None = None,
    covariates: Sequence[str] = (),
    reference: Mapping[str, Any] | None = None,
) -> BinaryResult:
    """Compare a 0/1 outcome between two arms: risk difference, risk ratio, odds ratio.

    With p_j the risk in arm j (j = 0 the reference, the first level in sorted order
    unless ``reference`` is given): RD = p1 - p0 with the Wald SE
    sqrt(p0(1-p0)/n0 + p1(1-p1)/n1); log RR and log OR with Katz's and Woolf's SEs
    sqrt(1/a - 1/n1 + 1/c - 1/n0), sqrt(1/a + 1/b + 1/c + 1/d). A zero cell adds 0.5 to
    every cell for RR and OR (Haldane; ``haldane`` is True and the method says so).

    With ``cluster``: g(E[y]) = b0 + b1 arm + covariates by GEE (binomial family; identity,
    log and logit links give RD, log RR, log OR), exchangeable working correlation with
    the correlation and scale estimated dividing by N (geepack), robust sandwich SE.
    Should the log-binomial model fail to converge, the RR comes from a Poisson working
    model with the robust SE (modified Poisson, Zou 2004), and the method says so; any
    other adjusted model that fails to converge (e.g. the identity link with fitted risks
    outside (0, 1)) gives NaN for that measure, flagged in its method and in ``.notes``. With
    ``covariates`` and no cluster the same models are fitted by GLM (model-based SE, R's
    ``glm``). The comparisons are all 95% Wald intervals with normal p-values.

    Parameters
    ----------
    df : DataFrame
        One row per child.
    outcome : str
        The 0/1 outcome.
    arm : str
        The arm column, exactly two levels.
    cluster : str, optional
        The cluster column (family): GEE with the robust SE.
    covariates : sequence of str
        Adjustment columns, coded as in every ``noim.stats`` model: numeric ones as they are,
        others dummy coded ``col[T.level]`` against their first level (a Categorical's first
        category, else the first in sorted order) or ``reference[col]``.
    reference : mapping, optional
        Reference levels of the arm and categorical covariates, e.g. ``{"arm": "SAU"}``
        (default: the first level).

    Rows with a missing value in a column used are dropped and counted (``n_dropped``).

    Returns
    -------
    BinaryResult
        ``levels``, ``risks`` (by arm), ``unadjusted`` and ``adjusted`` (dicts measure ->
        ``Effect``: estimate, lower, upper, pvalue, se, method), ``risk_difference``,
        ``risk_ratio``, ``odds_ratio`` (the adjusted comparison when one was fitted), ``haldane``,
        ``notes`` and ``summary`` (index analysis x measure).

    Raises
    ------
    StatsInputError
        An outcome that is not 0/1, not exactly two arms, no variation within
        either arm, fewer than two clusters in an arm, a categorical covariate with one level.
    """
    where = "binary_by_arm"
    refs = references(reference, [arm, *covariates], where)
    df, n_dropped, dropped_by_column = complete_cases(
        df, [outcome, arm, cluster, *covariates], where
    )
    y = numeric_column(df, outcome, where)
    if not np.isin(y, (0.0, 1.0)).all():
        bad = int(np.argmax(~np.isin(y, (0.0, 1.0))))
        raise StatsInputError(
            f"{where}: column {outcome!r} holds {y[bad]!r} (row {df.index[bad]!r}); expected 0 or 1"
        )
    levels, codes = two_arms(df, arm, where, refs.get(arm))
    unadjusted, haldane = _table(y, codes, where)
    adjusted = None
    groups = None
    if cluster is not None:
        _, groups = group_levels(df, cluster, where)
        check_clusters(groups, codes, levels, cluster, arm, where)
    if cluster is not None or covariates:
        x = arm_matrix(df, arm, levels, covariates, where, reference=refs)
        adjusted = _adjusted(y, x, groups, where, _separated(y, codes, levels))
    rows = []
    term = f"{arm}[T.{levels[1]}]"
    for analysis, effects in (("unadjusted", unadjusted), ("adjusted", adjusted)):
        for measure, eff in (effects or {}).items():
            scaled = eff.estimate if measure == "risk_difference" else np.log(eff.estimate)
            rows.append(
                {
                    "analysis": analysis,
                    "measure": measure,
                    "term": term,
                    "estimate": eff.estimate,
                    "se": eff.se,
                    "lower": eff.lower,
                    "upper": eff.upper,
                    "statistic": scaled / eff.se,
                    "p": eff.pvalue,
                    "method": eff.method,
                }
            )
    summary = pd.DataFrame(rows).set_index(["analysis", "measure"])
    n = np.bincount(codes, minlength=2)
    risks = pd.Series(
        np.bincount(codes, weights=y, minlength=2) / n,
        index=pd.Index(levels, name=arm),
        name="risk",
    )
    notes = []
    if haldane:
        notes.append("a cell of the 2x2 table is zero: 0.5 added to every cell for RR and OR")
    for measure, eff in (adjusted or {}).items():
        if eff.method.startswith("not estimable"):
            notes.append(f"adjusted {measure.replace('_', ' ')}: {eff.method}")
    method = "binary outcome by arm: 2x2 table"
    if adjusted is not None:
        method += "; GEE (exchangeable, robust SE)" if cluster is not None else "; binomial GLM"
    return BinaryResult(
        n_dropped=n_dropped,
        dropped_by_column=dropped_by_column,
        method=method,
        n=len(df),
        summary=summary,
        levels=(levels[0], levels[1]),
        risks=risks,
        unadjusted=unadjusted,
        adjusted=adjusted,
        haldane=haldane,
        notes=tuple(notes),
    )
