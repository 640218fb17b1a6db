"""The statistics at their edges (issue 13, point 6): too few clusters, infinite values,
separation in binary_by_arm and RMST with every observation censored, refused or flagged
the same way by every function of ``noim.stats``."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from noim import stats
from noim.stats import FewClustersWarning, StatsInputError


def trial(families: int = 60, seed: int = 5) -> pd.DataFrame:
    """Two children per family, arm by family; every kind of outcome the functions take."""
    rng = np.random.default_rng(seed)
    fam = np.repeat(np.arange(families), 2)
    arm = np.where(fam % 2 == 0, "NIM", "SAU")
    n = len(fam)
    base = rng.normal(15, 5, n)
    return pd.DataFrame(
        {
            "family": fam,
            "arm": arm,
            "site": np.where(fam % 3 == 0, "A", "B"),
            "base": base,
            "y": base + rng.normal(0, 4, n) - 2 * (arm == "NIM"),
            "binary": (rng.random(n) < 0.4).astype(int),
            "moves": rng.poisson(2, n),
            "days": rng.integers(100, 900, n).astype(float),
            "cost": rng.gamma(2.0, 500.0, n),
            "time": rng.integers(1, 30, n).astype(float),
            "event": (rng.random(n) < 0.6).astype(int),
        }
    )


# every clustered analysis, called on a frame with a ``family`` cluster column
CLUSTERED: dict[str, Callable[[pd.DataFrame], Any]] = {
    "compare_arms ancova": lambda d: stats.compare_arms(d, "y", "arm", "base", cluster="family"),
    "compare_arms mixed": lambda d: stats.compare_arms(
        d, "y", "arm", "base", cluster="family", method="mixed"
    ),
    "compare_arms gee": lambda d: stats.compare_arms(
        d, "y", "arm", "base", cluster="family", method="gee"
    ),
    "interaction": lambda d: stats.interaction(d, "y", "arm", "site", "base", cluster="family"),
    "cox": lambda d: stats.cox(d, "time", "event", ["arm", "base"], cluster="family"),
    "rate_ratio": lambda d: stats.rate_ratio(d, "moves", "arm", "days", cluster="family"),
    "binary_by_arm": lambda d: stats.binary_by_arm(d, "binary", "arm", cluster="family"),
    "cost_difference": lambda d: stats.cost_difference(
        d, "cost", "arm", cluster="family", n_boot=200, rng=1
    ),
    "mi_compare_arms": lambda d: stats.mi_compare_arms(
        d.assign(y=d["y"].where(d.index % 7 != 0)), "y", "arm", "base", m=2, rng=1, cluster="family"
    ),
}


@pytest.mark.parametrize("name", list(CLUSTERED))
def test_one_cluster_in_an_arm_is_refused_the_same_way(name: str) -> None:
    d = trial()
    # every NIM child in one family: the sandwich SE of the arm effect would be ~0
    d.loc[d["arm"] == "NIM", "family"] = -1
    with pytest.raises(
        StatsInputError,
        match=r"has 1 in 'NIM', \d+ in 'SAU' \(clusters per level of 'arm'\); expected at least 2 "
        r"clusters in each level of 'arm'",
    ):
        CLUSTERED[name](d)


@pytest.mark.parametrize("name", list(CLUSTERED))
def test_few_clusters_warn_and_enough_do_not(name: str) -> None:
    with pytest.warns(FewClustersWarning, match="fewer than 40 clusters"):
        CLUSTERED[name](trial(families=30))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FewClustersWarning)
        CLUSTERED[name](trial(families=60))


def test_cox_cluster_minimum_without_a_categorical_covariate() -> None:
    d = trial().assign(family=7)
    with pytest.raises(StatsInputError, match="has 1 cluster; expected at least 2 clusters"):
        stats.cox(d, "time", "event", ["base"], cluster="family")


# (function, column made infinite)
INFINITE: list[tuple[str, Callable[[pd.DataFrame], Any], str]] = [
    ("compare_arms", lambda d: stats.compare_arms(d, "y", "arm", "base"), "y"),
    ("compare_arms", lambda d: stats.compare_arms(d, "y", "arm", "base"), "base"),
    ("compare_arms", lambda d: stats.compare_arms(d, "y", "arm", covariates=["days"]), "days"),
    ("interaction", lambda d: stats.interaction(d, "y", "arm", "site", "base"), "y"),
    ("cox", lambda d: stats.cox(d, "time", "event", ["arm"]), "time"),
    ("cox", lambda d: stats.cox(d, "time", "event", ["arm", "base"]), "base"),
    ("fine_gray", lambda d: stats.fine_gray(d, "time", "event", ["base"]), "time"),
    ("kaplan_meier", lambda d: stats.kaplan_meier(d, "time", "event", "arm"), "time"),
    ("logrank", lambda d: stats.logrank(d, "time", "event", "arm"), "time"),
    ("rmst", lambda d: stats.rmst(d, "time", "event", "arm", tau=10), "time"),
    ("cumulative_incidence", lambda d: stats.cumulative_incidence(d, "time", "event"), "time"),
    ("rate_ratio", lambda d: stats.rate_ratio(d, "moves", "arm", "days"), "days"),
    (
        "rate_ratio",
        lambda d: stats.rate_ratio(d, "moves", "arm", "days", covariates=["base"]),
        "base",
    ),
    (
        "binary_by_arm",
        lambda d: stats.binary_by_arm(d, "binary", "arm", covariates=["base"]),
        "base",
    ),
    ("cost_difference", lambda d: stats.cost_difference(d, "cost", "arm", rng=1), "cost"),
    ("mi_compare_arms", lambda d: stats.mi_compare_arms(d, "y", "arm", "base", m=2, rng=1), "base"),
]


@pytest.mark.parametrize(("where", "call", "column"), INFINITE)
@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinite_values_are_refused_with_the_column_named(
    where: str, call: Callable[[pd.DataFrame], Any], column: str, value: float
) -> None:
    d = trial()
    d.loc[3, column] = value
    with pytest.raises(StatsInputError, match=rf"{where}: column '{column}' holds -?inf \(row 3"):
        call(d)


@pytest.mark.parametrize("adjust", [{"cluster": "family"}, {"covariates": ["base"]}])
def test_separation_is_flagged_not_estimable(adjust: dict[str, Any]) -> None:
    d = trial()
    d.loc[d["arm"] == "NIM", "binary"] = 0  # no events in NIM: adjusted RR and OR are 0 or inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = stats.binary_by_arm(d, "binary", "arm", **adjust)
    assert r.adjusted is not None
    for measure in ("risk_ratio", "odds_ratio"):
        eff = r.adjusted[measure]
        assert np.isnan([eff.estimate, eff.lower, eff.upper, eff.pvalue, eff.se]).all()
        assert eff.method.startswith("not estimable: separation (no events in arm 'NIM'")
        assert any(
            note.startswith(f"adjusted {measure.replace('_', ' ')}: not estimable")
            for note in r.notes
        )
    # the unadjusted 2x2 table keeps its (Haldane-corrected) estimates
    assert r.haldane and np.isfinite(r.unadjusted["odds_ratio"].estimate)
    assert "not estimable" in str(r)


def test_separation_by_a_covariate_level_is_flagged() -> None:
    d = trial()
    d.loc[d["site"] == "A", "binary"] = 0  # site A: no events, its coefficient runs to -inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = stats.binary_by_arm(d, "binary", "arm", covariates=["site"])
    assert r.adjusted is not None
    eff = r.adjusted["odds_ratio"]
    assert np.isnan(eff.estimate) and eff.method.startswith("not estimable")


def test_an_arm_of_only_events_flags_the_odds_ratio_only() -> None:
    d = trial()
    d.loc[d["arm"] == "NIM", "binary"] = 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = stats.binary_by_arm(d, "binary", "arm", covariates=["base"])
    assert r.adjusted is not None
    assert r.adjusted["odds_ratio"].method.startswith(
        "not estimable: separation (every row of arm 'NIM' is an event"
    )
    # RR = p1 / p0 is finite: the modified Poisson fit estimates it (p_NIM = 1)
    assert np.isfinite(r.adjusted["risk_ratio"].estimate)


def test_rmst_with_every_observation_censored_is_refused() -> None:
    d = trial().assign(event=0)
    with pytest.raises(StatsInputError, match="no events up to tau = 29"):
        stats.rmst(d, "time", "event", "arm")
    late = trial()
    late.loc[late["time"] <= 10, "event"] = 0
    with pytest.raises(StatsInputError, match="no events up to tau = 10"):
        stats.rmst(late, "time", "event", "arm", tau=10)
    # one arm without events is fine: its RMST is tau with SE 0, the difference has the other's SE
    one = trial()
    one.loc[one["arm"] == "NIM", "event"] = 0
    r = stats.rmst(one, "time", "event", "arm", tau=10)
    assert r.summary.loc["NIM", "se"] == 0.0
    assert np.isfinite(r.difference["p"]).all()


def test_statistics_warnings_become_notes_beside_the_table() -> None:
    # what the analysis scripts (analysis/_common.py) and the interim report do with them
    from noim.reports.summaries import stats_warnings

    def analyses() -> list[str]:
        with stats_warnings() as notes:
            stats.compare_arms(trial(families=30), "y", "arm", "base", cluster="family")
            stats.compare_arms(trial(families=30), "y", "arm", "base", cluster="family")
            warnings.warn("unrelated", UserWarning, stacklevel=1)
        return notes

    with pytest.warns(UserWarning, match="unrelated"):  # other warnings pass through
        notes = analyses()
    assert notes == [
        "Warning: compare_arms: 30 clusters of 'family'; clustered standard errors are too "
        "small with fewer than 40 clusters (p-values too small): interpret with caution"
    ]


# (function, column given a missing value): the one missing-value policy
MISSING: list[tuple[str, Callable[[pd.DataFrame], Any], str]] = [
    ("compare_arms", lambda d: stats.compare_arms(d, "y", "arm", "base", ["site"]), "site"),
    ("interaction", lambda d: stats.interaction(d, "y", "arm", "site", "base"), "y"),
    ("kaplan_meier", lambda d: stats.kaplan_meier(d, "time", "event", "arm"), "time"),
    ("logrank", lambda d: stats.logrank(d, "time", "event", "arm", strata="site"), "site"),
    ("rmst", lambda d: stats.rmst(d, "time", "event", "arm", tau=20), "event"),
    ("cox", lambda d: stats.cox(d, "time", "event", ["arm", "base"], strata="site"), "base"),
    ("cumulative_incidence", lambda d: stats.cumulative_incidence(d, "time", "event", "arm"),
     "arm"),
    ("gray_test", lambda d: stats.gray_test(d, "time", "event", "arm"), "time"),
    ("fine_gray", lambda d: stats.fine_gray(d, "time", "event", ["arm", "base"]), "base"),
    ("binary_by_arm", lambda d: stats.binary_by_arm(d, "binary", "arm", covariates=["base"]),
     "binary"),
    ("rate_ratio", lambda d: stats.rate_ratio(d, "moves", "arm", "days", cluster="family"),
     "family"),
    ("cost_difference", lambda d: stats.cost_difference(d, "cost", "arm", n_boot=200, rng=3),
     "cost"),
    ("mi_compare_arms", lambda d: stats.mi_compare_arms(d, "y", "arm", "base", m=2, rng=3),
     "arm"),
]  # fmt: skip


@pytest.mark.parametrize(("where", "call", "column"), MISSING)
def test_one_missing_value_policy_drop_and_count(
    where: str, call: Callable[[pd.DataFrame], Any], column: str
) -> None:
    d = trial().astype({"site": object, "arm": object})
    holes = d.copy()
    holes.loc[[4, 9], column] = None
    r = call(holes)
    complete = call(d.drop(index=[4, 9]))
    assert (r.n_dropped, r.dropped_by_column) == (2, {column: 2})
    assert complete.n_dropped == 0 and complete.dropped_by_column == {}
    pd.testing.assert_frame_equal(r.summary, complete.summary)
    assert f"2 row(s) with missing values dropped (complete cases): {column} 2" in str(r)


def test_reference_levels_are_spelled_one_way() -> None:
    d = trial()
    flipped = {"arm": "SAU"}
    assert stats.compare_arms(d, "y", "arm", "base", reference=flipped).comparison == "NIM"
    assert stats.binary_by_arm(d, "binary", "arm", reference=flipped).levels == ("SAU", "NIM")
    assert stats.rate_ratio(d, "moves", "arm", "days", reference=flipped).levels[0] == "SAU"
    assert stats.cost_difference(d, "cost", "arm", rng=1, reference=flipped).levels[0] == "SAU"
    assert "arm[T.NIM]" in stats.cox(d, "time", "event", ["arm"], reference=flipped).summary.index
    assert stats.rmst(d, "time", "event", "arm", reference=flipped).difference.index.tolist() == [
        "NIM - SAU"
    ]
    assert list(stats.kaplan_meier(d, "time", "event", "arm", reference=flipped).summary.index) == [
        "SAU",
        "NIM",
    ]
    # covariates and the arm in one mapping, in every model that takes covariates
    both = {"arm": "SAU", "site": "B"}
    assert "site[T.A]" in stats.compare_arms(d, "y", "arm", covariates=["site"],
                                             reference=both).summary.index  # fmt: skip
    assert "site[T.A]" in stats.rate_ratio(d, "moves", "arm", "days", covariates=["site"],
                                           reference=both).summary.index  # fmt: skip
    binary = stats.binary_by_arm(d, "binary", "arm", covariates=["site"], reference=both)
    assert binary.levels == ("SAU", "NIM")
    for bad in ("SAU", ["SAU"]):
        with pytest.raises(StatsInputError, match=r"expected a mapping from a column to its"):
            stats.binary_by_arm(d, "binary", "arm", reference=bad)  # type: ignore[arg-type]
    with pytest.raises(StatsInputError, match="reference names 'sex', which is not among"):
        stats.rate_ratio(d, "moves", "arm", "days", reference={"sex": "F"})


def test_default_level_order_is_a_categoricals_order_else_sorted() -> None:
    d = trial()
    assert stats.compare_arms(d, "y", "arm", "base").contrast == "SAU - NIM"  # sorted
    control_first = d.assign(arm=pd.Categorical(d["arm"], categories=["SAU", "NIM"]))
    assert stats.compare_arms(control_first, "y", "arm", "base").contrast == "NIM - SAU"
    assert stats.cost_difference(control_first, "cost", "arm", rng=1).levels == ("SAU", "NIM")


SUMMARY_COLUMNS = ["estimate", "se", "lower", "upper", "p"]


@pytest.mark.parametrize(
    "summary",
    [
        lambda d: stats.compare_arms(d, "y", "arm", "base").summary,
        lambda d: stats.interaction(d, "y", "arm", "site", "base").effects,
        lambda d: stats.cox(d, "time", "event", ["arm"]).summary,
        lambda d: stats.fine_gray(d, "time", "event", ["arm"]).summary,
        lambda d: stats.rmst(d, "time", "event", "arm").difference,
        lambda d: stats.binary_by_arm(d, "binary", "arm").summary,
        lambda d: stats.rate_ratio(d, "moves", "arm", "days").summary,
        lambda d: stats.cost_difference(d, "cost", "arm", rng=1).summary,
        lambda d: (
            stats.mi_compare_arms(
                d.assign(y=d["y"].where(d.index % 5 > 0)), "y", "arm", "base", m=2, rng=1
            ).summary
        ),
        lambda d: stats.pool([1.0, 1.2], [0.1, 0.12]).summary,
    ],
)
def test_summary_tables_share_column_names(summary: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    table = summary(trial())
    # the bootstrap cost difference has no test, hence no p; every other table has all five
    shared = [c for c in SUMMARY_COLUMNS if c != "p" or "bca_lower" not in table.columns]
    assert [c for c in table.columns if c in SUMMARY_COLUMNS] == shared, list(table.columns)
    assert not {"hr", "hr_lower", "rmst", "z", "pvalue", "rate_ratio", "median"} & set(table)
    assert (table["lower"].dropna() <= table["upper"].dropna()).all()
