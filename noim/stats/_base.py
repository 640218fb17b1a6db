"""What every estimator in ``noim.stats`` shares: input checks, result pieces and the base class.

Estimators take a tidy ``pandas.DataFrame`` and column names, check their input with
the helpers here (a ``StatsInputError`` names the column, what it holds and what was
expected) and return a frozen ``Result``: ``method``, ``n``, a ``summary`` DataFrame and
a readable ``str``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from noim.domain.exceptions import NoimError


class StatsInputError(NoimError, ValueError):
    """The data given to an estimator cannot be analysed as asked.

    The message names the function, the column, what it holds and what was expected, e.g.
    ``compare_arms: column 'y' holds 'high' (row 3); expected numbers``. A ``NoimError``
    (the CLI prints it as one line) and a ``ValueError``.
    """


def complete_cases(
    df: pd.DataFrame, columns: Sequence[str | None], where: str
) -> tuple[pd.DataFrame, int, dict[str, int]]:
    """The rows of ``df`` with a value in every one of ``columns`` (None entries skipped).

    noim's one missing-value policy: every estimator drops the rows with a missing value
    (None, NaN, NaT, pd.NA) in a column it uses, as R's ``na.omit``, and reports how many
    (``n_dropped``, ``dropped_by_column``; ``str(result)`` prints them).  Returns the rows kept
    (``df`` itself when none is missing; the index is kept, so errors name the original
    rows), the number dropped and the missing values per column.  No row left is refused.
    """
    require_columns(df, columns, where)
    used = list(dict.fromkeys(c for c in columns if c is not None))
    missing = df[used].isna()
    counts = missing.sum()
    if not counts.any():
        return df, 0, {}
    keep = ~missing.any(axis=1).to_numpy()
    by_column = {str(c): int(n) for c, n in counts.items() if n}
    if not keep.any():
        raise StatsInputError(
            f"{where}: no complete rows: every row misses a value in "
            + ", ".join(f"{c!r} ({n})" for c, n in by_column.items())
            + "; expected at least one complete row"
        )
    return df.loc[keep], int((~keep).sum()), by_column


def references(
    reference: Mapping[str, Any] | None, allowed: Sequence[str | None], where: str
) -> dict[str, Any]:
    """``reference`` checked: a mapping ``{column: reference level}`` over ``allowed`` columns.

    noim spells reference levels one way in every function: ``reference={"arm": "SAU",
    "site": "GLA"}`` names the reference level of the arm, of a categorical covariate or of a
    group column.  A column left out keeps its default order (a Categorical's categories,
    else sorted).
    """
    if reference is None:
        return {}
    if not isinstance(reference, Mapping):
        raise StatsInputError(
            f"{where}: got reference={reference!r}; expected a mapping from a column to its "
            "reference level, e.g. reference={'arm': 'SAU'}"
        )
    names = [c for c in allowed if c is not None]
    unknown = [c for c in reference if c not in names]
    if unknown:
        raise StatsInputError(
            f"{where}: reference names {', '.join(map(repr, unknown))}, which is not among the "
            f"columns {names!r}; expected a mapping from a categorical column (arm, covariate, "
            "group) to its reference level"
        )
    return dict(reference)


def require_columns(df: pd.DataFrame, columns: Sequence[str | None], where: str) -> None:
    """Every named column is in ``df`` (None entries are skipped)."""
    if not isinstance(df, pd.DataFrame):
        raise StatsInputError(f"{where}: got {type(df).__name__}; expected a pandas DataFrame")
    missing = [c for c in columns if c is not None and c not in df.columns]
    if missing:
        raise StatsInputError(
            f"{where}: no column(s) {', '.join(map(repr, missing))}; the data have "
            + ", ".join(map(repr, map(str, df.columns)))
        )
    if len(df) == 0:
        raise StatsInputError(f"{where}: got an empty DataFrame; expected at least one row")


def numeric_column(
    df: pd.DataFrame, column: str, where: str, *, minimum: float | None = None
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """``df[column]`` as float64, refusing missing and infinite values, non-numbers and values
    below ``minimum``."""
    series = df[column]
    try:
        values = pd.to_numeric(series, errors="raise").to_numpy(dtype=float)
    except (TypeError, ValueError):
        bad = series[pd.to_numeric(series, errors="coerce").isna() & series.notna()]
        raise StatsInputError(
            f"{where}: column {column!r} holds {bad.iloc[0]!r} (row {bad.index[0]!r}); "
            "expected numbers"
        ) from None
    missing = np.isnan(values)
    if missing.any():
        raise StatsInputError(
            f"{where}: column {column!r} has {int(missing.sum())} missing value(s) (first at row "
            f"{series.index[int(np.argmax(missing))]!r}); expected none (drop or impute them first)"
        )
    infinite = np.isinf(values)
    if infinite.any():
        i = int(np.argmax(infinite))
        raise StatsInputError(
            f"{where}: column {column!r} holds {float(values[i])!r} (row {series.index[i]!r}; "
            f"{int(infinite.sum())} infinite value(s)); expected finite numbers"
        )
    if minimum is not None and (values < minimum).any():
        i = int(np.argmax(values < minimum))
        raise StatsInputError(
            f"{where}: column {column!r} holds {values[i]!r} (row {series.index[i]!r}); "
            f"expected values of at least {minimum}"
        )
    return np.asarray(values, dtype=np.float64)


def event_column(
    df: pd.DataFrame, column: str, where: str, *, causes: bool = False
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """An event indicator: 0 = censored, 1 = event (or 1..k competing causes when ``causes``)."""
    values = numeric_column(df, column, where)
    if causes:
        ok = (values >= 0) & (values == np.floor(values))
        expected = "0 (censored) or a whole number 1..k (the cause)"
    else:
        ok = np.isin(values, (0.0, 1.0))
        expected = "0 (censored) or 1 (event)"
    if not ok.all():
        i = int(np.argmax(~ok))
        raise StatsInputError(
            f"{where}: column {column!r} holds {values[i]!r} (row {df.index[i]!r}); expected {expected}"
        )
    return values.astype(np.int64)


def group_levels(
    df: pd.DataFrame, column: str, where: str, *, reference: Any = None, at_least: int = 1
) -> tuple[list[Any], np.ndarray[Any, np.dtype[np.int64]]]:
    """Levels of ``df[column]`` (``reference`` first when given) and each row's level index.

    The order is that of a pandas ``Categorical``'s categories (as R's factor levels: noim's
    analysis data give ``arm`` the control arm first, from the trial definition), else
    sorted; only levels present in the data count.
    """
    series = df[column]
    if series.isna().any():
        raise StatsInputError(
            f"{where}: column {column!r} has {int(series.isna().sum())} missing value(s); "
            "expected a level for every row"
        )
    # Code the distinct values once (factorize), then map them to the sorted levels: no
    # Python loop over rows.
    first_seen, uniques = pd.factorize(series, sort=False)
    distinct = pd.Index(uniques).tolist()
    if isinstance(series.dtype, pd.CategoricalDtype):
        present = set(distinct)
        levels = [c for c in series.cat.categories.tolist() if c in present]
    else:
        levels = sorted(distinct, key=lambda v: (str(type(v)), v))
    if reference is not None:
        if reference not in levels:
            raise StatsInputError(
                f"{where}: reference {reference!r} is not a level of {column!r}; levels are "
                + ", ".join(map(repr, levels))
            )
        levels.remove(reference)
        levels.insert(0, reference)
    if len(levels) < at_least:
        raise StatsInputError(
            f"{where}: column {column!r} has {len(levels)} level(s) ({', '.join(map(repr, levels))}); "
            f"expected at least {at_least}"
        )
    index = {v: i for i, v in enumerate(levels)}
    position = np.fromiter((index[v] for v in distinct), dtype=np.int64, count=len(distinct))
    codes = position[first_seen]
    return levels, codes


def two_arms(
    df: pd.DataFrame, arm: str, where: str, reference: Any
) -> tuple[list[Any], np.ndarray[Any, np.dtype[np.int64]]]:
    """Exactly two arm levels (``reference`` first, else in ``group_levels`` order) and each
    row's 0/1 arm code."""
    levels, codes = group_levels(df, arm, where, reference=reference, at_least=2)
    if len(levels) != 2:
        raise StatsInputError(
            f"{where}: column {arm!r} has {len(levels)} levels ({', '.join(map(repr, levels))}); "
            "expected exactly two arms"
        )
    return levels, codes


#: Fewest clusters in each arm (each level of the compared column) for any clustered analysis:
#: cluster-robust (sandwich) SEs, GEE, random intercepts, the cluster bootstrap.  Below it the
#: analysis is refused (with one cluster in an arm the sandwich SE of the arm effect is ~0).
MIN_CLUSTERS_PER_ARM = 2
#: Fewest clusters in total for which cluster-robust inference is trusted; below it a
#: ``FewClustersWarning`` is issued (SEs too small, p too small: Cameron & Miller 2015;
#: Leyrat et al. 2018 recommend small-sample corrections below 40 clusters).
RECOMMENDED_CLUSTERS = 40


class FewClustersWarning(UserWarning):
    """A clustered analysis with fewer than ``RECOMMENDED_CLUSTERS`` clusters in total."""


def check_clusters(
    cluster_codes: np.ndarray[Any, Any],
    group_codes: np.ndarray[Any, Any] | None,
    levels: Sequence[Any],
    cluster: str,
    group: str | None,
    where: str,
) -> int:
    """The number of clusters, refusing fewer than ``MIN_CLUSTERS_PER_ARM`` in a level of ``group``.

    ``cluster_codes`` and ``group_codes`` code each row's cluster and level (0..k-1 of
    ``levels``; ``group_codes`` None: every row in one group).  Every clustered analysis calls
    this, so the refusal reads the same everywhere; fewer than ``RECOMMENDED_CLUSTERS``
    clusters in total give a ``FewClustersWarning``.
    """
    clusters = np.asarray(cluster_codes, dtype=np.int64)
    n_clusters = int(np.unique(clusters).size)
    if group_codes is None:
        if n_clusters < MIN_CLUSTERS_PER_ARM:
            raise StatsInputError(
                f"{where}: column {cluster!r} has {n_clusters} cluster; expected at least "
                f"{MIN_CLUSTERS_PER_ARM} clusters for a clustered analysis; use cluster=None"
            )
    else:
        width = int(clusters.max()) + 1
        pairs = np.unique(np.asarray(group_codes, dtype=np.int64) * width + clusters)
        per_level = np.bincount(pairs // width, minlength=len(levels))
        if per_level.min() < MIN_CLUSTERS_PER_ARM:
            counts = ", ".join(
                f"{int(n)} in {lv!r}" for lv, n in zip(levels, per_level, strict=True)
            )
            raise StatsInputError(
                f"{where}: column {cluster!r} has {counts} (clusters per level of {group!r}); "
                f"expected at least {MIN_CLUSTERS_PER_ARM} clusters in each level of {group!r} "
                "for a clustered analysis (with one cluster in an arm the arm effect's "
                "cluster-robust SE is about 0); use cluster=None"
            )
    if n_clusters < RECOMMENDED_CLUSTERS:
        warnings.warn(
            f"{where}: {n_clusters} clusters of {cluster!r}; clustered standard errors are too "
            f"small with fewer than {RECOMMENDED_CLUSTERS} clusters (p-values too small): "
            "interpret with caution",
            FewClustersWarning,
            stacklevel=3,
        )
    return n_clusters


def generator(rng: np.random.Generator | int | None, where: str) -> np.random.Generator:
    """The caller's ``numpy.random.Generator``, or one seeded with the caller's int seed."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise StatsInputError(
        f"{where}: rng is {rng!r}; expected a numpy.random.Generator or an int seed "
        "(randomness only from the caller)"
    )


#: The 97.5% standard normal quantile (95% Wald intervals).
Z975 = float(sps.norm.ppf(0.975))


@dataclass(frozen=True)
class Effect:
    """One comparison of the second arm with the first: estimate, 95% CI, p and SE.

    ``se`` is on the scale the interval is built on (the log scale for ratios).
    """

    estimate: float
    lower: float
    upper: float
    pvalue: float
    se: float
    method: str

    @property
    def ci(self) -> tuple[float, float]:
        return (self.lower, self.upper)


def table_text(frame: pd.DataFrame | pd.Series) -> str:
    """A result table as text, 120 characters wide (every ``Result.__str__`` uses this)."""
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        return str(frame.to_string())


@dataclass(frozen=True, repr=False)
class Result:
    """Base of every result: the method, the number of observations and a summary table.

    Attributes
    ----------
    method : str
        What was fitted, in words (model, variance estimator, conventions).
    n : int
        Number of observations used (a dict per arm in the arm comparisons).
    summary : DataFrame
        The estimates, one row per term or group; ``str(result)`` prints it.  Estimates,
        standard errors, 95% limits, test statistics and p-values are always in the columns
        ``estimate``, ``se``, ``lower``, ``upper``, ``statistic`` and ``p``.
    n_dropped, dropped_by_column : int, dict
        Rows dropped for a missing value in a column used, in total and per column.
    """

    method: str
    n: int
    summary: pd.DataFrame
    n_dropped: int = field(default=0, kw_only=True)
    dropped_by_column: dict[str, int] = field(default_factory=dict, kw_only=True)

    def dropped_text(self) -> str:
        """The line ``str(result)`` prints when rows were dropped for missing values ("" if none)."""
        if not self.n_dropped:
            return ""
        return (
            f"{self.n_dropped} row(s) with missing values dropped (complete cases): "
            + ", ".join(f"{k} {v}" for k, v in self.dropped_by_column.items())
        )

    def _with_dropped(self, text: str) -> str:
        dropped = self.dropped_text()
        if not dropped:
            return text
        head, _, rest = text.partition("\n")
        return f"{head}\n{dropped}" + (f"\n{rest}" if rest else "")

    def __str__(self) -> str:
        return self._with_dropped(f"{self.method} (n = {self.n})\n{table_text(self.summary)}")

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.method}, n = {self.n}>"
