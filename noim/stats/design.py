"""Design matrices for outcome comparisons by arm: complete cases, dummy coding, names.

``build_design`` turns a tidy DataFrame and the column roles of ``compare_arms`` /
``interaction`` into a float design matrix with patsy/statsmodels-style column names:

* ``Intercept``;
* the arm as a treatment contrast, ``arm[T.level]`` for the non-reference level
  (reference = the first level: a Categorical's first category, else the first in sorted
  order; or ``reference={"arm": level}``);
* the baseline and numeric covariates under their own names;
* categorical covariates (strings, categories, booleans) dummy coded against their first
  level in the same order, or the level given in ``reference={"site": "GLA"}``, named
  ``col[T.level]`` as in ``stats.cox``;
* for ``interaction``: the subgroup column ``by`` (always categorical) and the products
  ``arm[T.b]:by[T.level]``.

Rows with a missing value in any column used are dropped (complete-case analysis); how many
were dropped, per column, is returned so results can report it — never silently.  The
baseline is the exception unless ``baseline_missing="drop"``: a child without a baseline
stays in the analysis, its baseline set to the mean of the observed baselines of the rows
analysed, with a missing-indicator term ``<baseline>_missing`` (``"indicator"``) or without
(``"mean"``); both are valid adjustments in a randomised trial (White & Thompson, Stat Med
2005;24:993-1007).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from noim.stats._base import (
    StatsInputError,
    check_clusters,
    complete_cases,
    group_levels,
    numeric_column,
    references,
    require_columns,
)

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]

#: how a missing baseline is handled: missing-indicator method, mean imputation, or drop the row
BASELINE_MISSING = ("indicator", "mean", "drop")
#: the default of ``compare_arms`` and ``interaction`` (and so of the scripts and reports)
DEFAULT_BASELINE_MISSING = "indicator"


@dataclass(frozen=True)
class Design:
    """A model's response, design matrix, column names and the bookkeeping around them."""

    y: FloatArray
    X: FloatArray
    names: list[str]
    arm_levels: list[Any]  # [reference, comparison]
    arm_codes: IntArray  # 0 = reference, 1 = comparison, per kept row
    arm_term: str  # name of the arm column in X, e.g. "arm[T.NIM]"
    n_dropped: int
    dropped_by_column: dict[str, int]
    cluster_codes: IntArray | None = None  # 0..G-1 per kept row
    n_clusters: int = 0
    by_levels: list[Any] = field(default_factory=list)
    by_codes: IntArray | None = None
    interaction_terms: list[str] = field(default_factory=list)
    #: per arm level (reference first): rows with the outcome observed, among the rows given
    n_outcome: dict[Any, int] = field(default_factory=dict)
    #: how a missing baseline was handled (``BASELINE_MISSING``), and which kept rows had one
    baseline_missing: str = "drop"
    baseline_filled: np.ndarray[Any, np.dtype[np.bool_]] | None = None
    baseline_fill: float | None = None  # the mean the missing baselines were set to


def is_categorical(series: pd.Series) -> bool:
    """Dummy coded (not entered as a number): strings, objects, categories and booleans."""
    return not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def dummies(
    frame: pd.DataFrame, column: str, where: str, reference: Any
) -> tuple[list[str], FloatArray, list[Any], IntArray]:
    """Treatment contrasts of a categorical column: names ``col[T.level]``, 0/1 block, levels, codes.

    The reference is ``reference`` when given, else the first level in sorted order; a
    column with a single level is refused.
    """
    levels, codes = group_levels(frame, column, where, reference=reference)
    if len(levels) < 2:
        raise StatsInputError(
            f"{where}: categorical column {column!r} has one level ({levels[0]!r}) in the "
            "complete cases; expected at least 2 (a constant covariate cannot be estimated: "
            "remove it)"
        )
    names = [f"{column}[T.{level}]" for level in levels[1:]]
    block = (codes[:, None] == np.arange(1, len(levels))[None, :]).astype(np.float64)
    return names, block, levels, codes


def covariate_columns(
    frame: pd.DataFrame,
    covariates: Sequence[str],
    where: str,
    *,
    references: Mapping[str, Any] | None = None,
    refuse_constant: bool = False,
) -> tuple[list[str], list[FloatArray]]:
    """Names and column blocks of the covariates, in the order given.

    Numeric covariates enter as they are (under their own name); categorical ones (see
    ``is_categorical``) as ``dummies`` against ``references[col]`` or their first sorted
    level.  A reference for a numeric covariate is refused; so is a constant numeric
    covariate when ``refuse_constant``.
    """
    refs = dict(references or {})
    names: list[str] = []
    blocks: list[FloatArray] = []
    for c in covariates:
        if is_categorical(frame[c]):
            dn, block, _, _ = dummies(frame, c, where, refs.get(c))
            names += dn
            blocks.append(block)
            continue
        if c in refs:
            raise StatsInputError(
                f"{where}: reference gives a level for numeric column {c!r}; expected "
                "references only for categorical columns"
            )
        x = numeric_column(frame, c, where)
        if refuse_constant and np.all(x == x[0]):
            raise StatsInputError(
                f"{where}: covariate {c!r} is constant ({x[0]!r}); expected a covariate that varies"
            )
        names.append(c)
        blocks.append(x[:, None])
    return names, blocks


def arm_matrix(
    df: pd.DataFrame,
    arm: str,
    levels: Sequence[Any],
    covariates: Sequence[str],
    where: str,
    *,
    reference: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Model matrix of a GLM/GEE by arm (no complete-case step): ``Intercept``,
    ``arm[T.levels[1]]`` and the covariates as in ``covariate_columns``, as a DataFrame
    indexed like ``df``; ``reference`` gives the covariates' reference levels (the arm's, if
    present, is ignored: ``levels`` are already ordered)."""
    if arm in covariates:
        raise StatsInputError(f"{where}: covariate {arm!r} is the arm; expected other columns")
    refs = {c: r for c, r in (reference or {}).items() if c != arm}
    names, blocks = covariate_columns(df, covariates, where, references=refs)
    arm_col = (df[arm] == levels[1]).to_numpy(dtype=np.float64)[:, None]
    X = np.hstack([np.ones((len(df), 1)), arm_col, *blocks])
    return pd.DataFrame(X, index=df.index, columns=["Intercept", f"{arm}[T.{levels[1]}]", *names])


def build_design(
    df: pd.DataFrame,
    outcome: str,
    arm: str,
    *,
    baseline: str | None,
    covariates: Sequence[str],
    cluster: str | None,
    reference: Mapping[str, Any] | None,
    where: str,
    by: str | None = None,
    baseline_missing: str = "drop",
) -> Design:
    """Complete cases of the columns used (but the baseline, unless ``baseline_missing`` is
    "drop"), then the design matrix (see the module docstring)."""
    if baseline_missing not in BASELINE_MISSING:
        raise StatsInputError(
            f"{where}: baseline_missing={baseline_missing!r}; expected one of "
            + ", ".join(map(repr, BASELINE_MISSING))
        )
    if isinstance(covariates, str):
        covariates = (covariates,)
    covariates = list(covariates)
    roles = [outcome, arm, baseline, *covariates, by, cluster]
    require_columns(df, roles, where)
    used = [c for c in roles if c is not None]
    seen: set[str] = set()
    for c in used:
        if c in seen:
            raise StatsInputError(
                f"{where}: column {c!r} is given in two roles; expected each column once "
                "(outcome, arm, baseline, covariates, by and cluster are distinct)"
            )
        seen.add(c)
    refs = references(reference, [arm, *covariates, by], where)

    keep_missing = baseline if baseline is not None and baseline_missing != "drop" else None
    required = [c for c in used if c != keep_missing]
    kept, n_dropped, dropped_by_column = complete_cases(df, required, where)
    frame = kept[used]

    y = numeric_column(frame, outcome, where)
    if np.ptp(y) == 0:
        raise StatsInputError(
            f"{where}: outcome {outcome!r} is constant ({y[0]!r} in every complete row); "
            "expected an outcome that varies"
        )
    arm_levels, arm_codes = group_levels(frame, arm, where, reference=refs.get(arm), at_least=2)
    if len(arm_levels) > 2:
        raise StatsInputError(
            f"{where}: arm column {arm!r} has {len(arm_levels)} levels "
            f"({', '.join(map(repr, arm_levels))}); expected exactly two (subset the data to the "
            "two arms to compare)"
        )
    arm_term = f"{arm}[T.{arm_levels[1]}]"
    names = ["Intercept", arm_term]
    blocks: list[FloatArray] = [np.ones((len(y), 1)), arm_codes[:, None].astype(np.float64)]

    cov_names, cov_blocks = covariate_columns(
        frame, covariates, where, references={c: r for c, r in refs.items() if c not in (arm, by)}
    )
    names += cov_names
    blocks += cov_blocks
    filled: np.ndarray[Any, np.dtype[np.bool_]] | None = None
    fill: float | None = None
    if baseline is not None:
        filled = frame[baseline].isna().to_numpy()
        observed = numeric_column(frame.loc[~filled], baseline, where) if (~filled).any() else None
        if observed is None:
            raise StatsInputError(
                f"{where}: baseline {baseline!r} is missing in every one of the {len(frame)} "
                "row(s) analysed; expected some observed baselines (or baseline=None)"
            )
        x = observed
        if filled.any():
            fill = float(observed.mean())
            x = np.full(len(frame), fill)
            x[~filled] = observed
        names.insert(2, baseline)
        blocks.insert(2, x[:, None])
        if baseline_missing == "indicator" and filled.any():
            names.insert(3, f"{baseline}_missing")
            blocks.insert(3, filled.astype(np.float64)[:, None])

    by_levels: list[Any] = []
    by_codes: IntArray | None = None
    interaction_terms: list[str] = []
    if by is not None:
        dn, block, by_levels, by_codes = dummies(frame, by, where, refs.get(by))
        interaction_terms = [f"{arm_term}:{name}" for name in dn]
        names += dn + interaction_terms
        blocks += [block, block * arm_codes[:, None]]

    X = np.hstack(blocks)
    cluster_codes: IntArray | None = None
    n_clusters = 0
    if cluster is not None:
        codes, _ = pd.factorize(frame[cluster], sort=True)
        cluster_codes = np.asarray(codes, dtype=np.int64)
        n_clusters = check_clusters(cluster_codes, arm_codes, arm_levels, cluster, arm, where)

    _check_rank(X, names, where)
    with_outcome = df[arm].notna() & df[outcome].notna()
    outcome_counts = df.loc[with_outcome, arm].value_counts()
    return Design(
        y=y,
        X=X,
        names=names,
        arm_levels=arm_levels,
        arm_codes=arm_codes,
        arm_term=arm_term,
        n_dropped=n_dropped,
        dropped_by_column=dropped_by_column,
        cluster_codes=cluster_codes,
        n_clusters=n_clusters,
        by_levels=by_levels,
        by_codes=by_codes,
        interaction_terms=interaction_terms,
        n_outcome={level: int(outcome_counts.get(level, 0)) for level in arm_levels},
        baseline_missing=baseline_missing if baseline is not None else "drop",
        baseline_filled=filled,
        baseline_fill=fill,
    )


def _check_rank(X: FloatArray, names: list[str], where: str) -> None:
    """Refuse a design whose columns are linearly dependent, naming the redundant ones."""
    n, p = X.shape
    if n <= p:
        raise StatsInputError(
            f"{where}: {n} complete row(s) for {p} coefficients ({', '.join(names)}); expected "
            "more rows than coefficients"
        )
    scale = np.sqrt((X * X).sum(axis=0))
    scale[scale == 0] = 1.0
    gram = (X.T @ X) / np.outer(scale, scale)  # p x p, unit diagonal: O(n p^2), no n x p SVD

    def rank(cols: list[int]) -> int:
        eig = np.linalg.eigvalsh(gram[np.ix_(cols, cols)])
        return int((eig > 1e-10 * max(eig.max(), 1.0)).sum())

    if rank(list(range(p))) == p:
        return
    redundant = []
    basis = [0]
    for j in range(1, p):
        if rank([*basis, j]) > len(basis):
            basis.append(j)
        else:
            redundant.append(names[j])
    raise StatsInputError(
        f"{where}: the design is rank deficient: {', '.join(map(repr, redundant))} "
        "is a linear combination of the other terms (e.g. constant, or a duplicate of another "
        "covariate); expected linearly independent covariates"
    )


def cluster_sums(values: FloatArray, codes: IntArray, n_clusters: int) -> FloatArray:
    """Sum of the rows of ``values`` (n or n x k) within each cluster code 0..G-1."""
    if values.ndim == 1:
        return np.bincount(codes, weights=values, minlength=n_clusters).astype(np.float64)
    out = np.empty((n_clusters, values.shape[1]))
    for j in range(values.shape[1]):  # loop over columns (p), not rows
        out[:, j] = np.bincount(codes, weights=values[:, j], minlength=n_clusters)
    return out


def covariate_matrix(
    df: pd.DataFrame, covariates: Sequence[str], reference: Mapping[str, Any] | None, where: str
) -> tuple[np.ndarray[Any, np.dtype[np.float64]], list[str]]:
    """The covariates of a regression without intercept (Cox, Fine–Gray) as one matrix.

    Numeric covariates as they are (a constant one is refused); categorical ones (dtype
    not numeric, or bool) as dummies ``"c[T.L]"`` against their first level (a Categorical's
    first category, else the first sorted) or ``reference[c]``.
    """
    refs = references(reference, covariates, where)
    names, blocks = covariate_columns(df, covariates, where, references=refs, refuse_constant=True)
    return np.hstack(blocks), names
