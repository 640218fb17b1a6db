"""stats.pool (Rubin's rules) against mice::pool.scalar; stats.impute and mi_compare_arms
on generated data with MAR missingness and a known arm effect (not against R's draws)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from noim import stats
from noim.stats import StatsInputError

Q = [1.10, 1.30, 0.95, 1.22, 1.05]
U = [0.040, 0.045, 0.038, 0.042, 0.041]


def test_pool_against_mice() -> None:
    # mice::pool.scalar(Q = c(1.10, 1.30, 0.95, 1.22, 1.05),
    #                   U = c(.040, .045, .038, .042, .041), n = 100, k = 3)
    #   qbar 1.124  ubar 0.0412  b 0.01913  t 0.064156  df 20.665844747039
    #   r 0.557184466019  fmi 0.412086337375
    r = stats.pool(Q, U, n=100, k=3)
    assert r.estimate == pytest.approx(1.124, rel=1e-12)
    assert r.within == pytest.approx(0.0412, rel=1e-12)
    assert r.between == pytest.approx(0.01913, rel=1e-12)
    assert r.total == pytest.approx(0.064156, rel=1e-12)
    assert r.df == pytest.approx(20.665844747039, rel=1e-8, abs=1e-8)
    assert r.riv == pytest.approx(0.557184466019, rel=1e-10)
    assert r.fmi == pytest.approx(0.412086337375, rel=1e-10)
    t975 = 2.0816632427  # R: qt(.975, 20.665844747039)
    assert r.ci[1] - r.estimate == pytest.approx(t975 * np.sqrt(0.064156), rel=1e-9)
    assert r.summary.loc["pooled", "df"] == pytest.approx(20.665844747039, rel=1e-10)
    assert r.n == 100 and r.m == 5 and "Barnard-Rubin" in str(r)


def test_pool_large_sample_and_no_between_variance() -> None:
    # mice::pool.scalar(Q, U, n = Inf): df 31.242236570603, fmi 0.395323662168
    r = stats.pool(Q, U)
    assert r.df == pytest.approx(31.242236570603, rel=1e-10)
    assert r.fmi == pytest.approx(0.395323662168, rel=1e-10)
    # mice::pool.scalar(Q = c(1, 1, 1), U = c(.1, .1, .1), n = 50, k = 2):
    #   t 0.1, df 46.113024662060 (lambda floored at 1e-4), fmi 0.040722395205
    same = stats.pool([1.0, 1.0, 1.0], [0.1, 0.1, 0.1], n=50, k=2)
    assert same.total == pytest.approx(0.1)
    assert same.df == pytest.approx(46.113024662060, rel=1e-10)
    assert same.fmi == pytest.approx(0.040722395205, rel=1e-10)


def test_pool_refuses_bad_input() -> None:
    with pytest.raises(StatsInputError, match="m >= 2"):
        stats.pool([1.0], [0.1], n=10, k=1)
    with pytest.raises(StatsInputError, match="equal-length"):
        stats.pool([1.0, 2.0], [0.1], n=10, k=1)
    with pytest.raises(StatsInputError, match="finite"):
        stats.pool([1.0, np.nan], [0.1, 0.1], n=10, k=1)
    with pytest.raises(StatsInputError, match="n - k >= 1"):
        stats.pool(Q, U, n=3, k=3)
    with pytest.raises(StatsInputError, match="total variance is 0"):
        stats.pool([1.0, 1.0], [0.0, 0.0], n=10, k=1)


def trial(seed: int = 5, n: int = 600, effect: float = 5.0) -> pd.DataFrame:
    """Outcome y = 10 + 0.8 baseline + effect * nim + N(0, 6^2); y missing at random given
    baseline and arm (more often at high baseline and in nim); 10% of baselines missing."""
    rng = np.random.default_rng(seed)
    arm = np.where(rng.random(n) < 0.5, "control", "nim")
    base = rng.normal(50, 10, n)
    y = 10 + 0.8 * base + effect * (arm == "nim") + rng.normal(0, 6, n)
    p = 1 / (1 + np.exp(-(-1.0 + 0.08 * (base - 50) + 0.5 * (arm == "nim"))))
    y[rng.random(n) < p] = np.nan
    observed_base = np.where(rng.random(n) < 0.1, np.nan, base)
    sex = np.where(rng.random(n) < 0.5, "f", "m")
    return pd.DataFrame({"arm": arm, "baseline": observed_base, "y": y, "sex": sex})


def test_impute_fills_with_observed_donor_values_and_keeps_observed() -> None:
    df = trial()
    copies = stats.impute(df, ["y", "baseline", "sex"], m=3, rng=11, by="arm")
    assert len(copies) == 3
    for c in copies:
        assert not c[["y", "baseline"]].isna().any().any()
        observed = df["y"].notna()
        assert (c.loc[observed, "y"] == df.loc[observed, "y"]).all()
        assert (c["sex"] == df["sex"]).all() and (c["arm"] == df["arm"]).all()
        for level in ("control", "nim"):  # PMM within arm: donors come from the same arm
            in_arm = df["arm"] == level
            donors = set(df.loc[in_arm & observed, "y"])
            assert set(c.loc[in_arm & ~observed, "y"]) <= donors
    assert not copies[0]["y"].equals(copies[1]["y"])  # each copy is its own chain


def test_impute_is_reproducible_from_the_seed() -> None:
    df = trial()
    a = stats.impute(df, ["y", "baseline"], m=2, rng=np.random.default_rng(3))
    b = stats.impute(df, ["y", "baseline"], m=2, rng=np.random.default_rng(3))
    c = stats.impute(df, ["y", "baseline"], m=2, rng=4)
    for x, y in zip(a, b, strict=True):
        pd.testing.assert_frame_equal(x, y)
    assert not a[0]["y"].equals(c[0]["y"])


def test_impute_refuses_bad_input() -> None:
    df = trial()
    with pytest.raises(
        StatsInputError, match=r"expected a numpy\.random\.Generator or an int seed"
    ):
        stats.impute(df, ["y", "baseline"])
    with pytest.raises(StatsInputError, match="expected missing values only in numeric columns"):
        stats.impute(df.assign(sex=df["sex"].where(df.index > 2)), ["y", "sex"], rng=1)
    few = df.assign(y=np.where(df["arm"] == "nim", np.nan, df["y"]))
    few.loc[few.index[few["arm"] == "nim"][0], "y"] = 50.0
    with pytest.raises(StatsInputError, match="1 observed value\\(s\\) in arm = 'nim'"):
        stats.impute(few, ["y", "baseline"], rng=1, by="arm")
    with pytest.raises(StatsInputError, match="m >= 2"):
        stats.impute(df, ["y"], m=1, rng=1)


def test_mi_compare_arms_recovers_the_known_effect() -> None:
    df = trial(effect=5.0)
    r = stats.mi_compare_arms(df, "y", "arm", baseline="baseline", covariates=["sex"], m=20, rng=1)
    assert r.levels == ("control", "nim")
    assert abs(r.estimate - 5.0) < 2 * r.se
    assert r.ci[0] < 5.0 < r.ci[1]
    assert 0.0 < r.fmi < 1.0 and r.df > 10
    cc = r.complete_case
    assert cc.n == int(df[["y", "baseline"]].notna().all(axis=1).sum())
    assert cc.ci[0] < 5.0 < cc.ci[1]
    assert r.n_missing == len(df) - cc.n
    assert list(r.summary.index) == ["multiple imputation (m = 20)", "complete case"]
    assert (r.summary["term"] == "arm[T.nim]").all()
    assert "Rubin" in str(r)


def test_mi_compare_arms_complete_case_equals_ols() -> None:
    # complete-case default analysis is lm(y ~ arm + baseline + sex) on the complete rows
    df = trial()
    r = stats.mi_compare_arms(df, "y", "arm", baseline="baseline", covariates=["sex"], m=2, rng=1)
    cc = df.dropna()
    x = np.column_stack(
        [np.ones(len(cc)), cc["arm"] == "nim", cc["baseline"], cc["sex"] == "m"]
    ).astype(float)
    beta, *_ = np.linalg.lstsq(x, cc["y"].to_numpy(), rcond=None)
    assert r.complete_case.estimate == pytest.approx(beta[1], rel=1e-10)


def test_mi_compare_arms_same_seed_same_result_and_custom_analysis() -> None:
    df = trial()
    a = stats.mi_compare_arms(df, "y", "arm", baseline="baseline", m=5, rng=7)
    b = stats.mi_compare_arms(df, "y", "arm", baseline="baseline", m=5, rng=7)
    assert a.estimate == b.estimate and a.se == b.se and a.df == b.df

    def difference_in_means(frame: pd.DataFrame) -> tuple[float, float]:
        g = frame.groupby("arm")["y"]
        means, var, n = g.mean(), g.var(), g.count()
        return float(means["nim"] - means["control"]), float((var / n).sum())

    c = stats.mi_compare_arms(
        df, "y", "arm", baseline="baseline", m=5, rng=7, analyse=difference_in_means
    )
    assert c.estimate != a.estimate
    cc = df.dropna(subset=["y", "baseline"])
    assert c.complete_case.estimate == pytest.approx(difference_in_means(cc)[0])


def test_mi_compare_arms_refuses_an_arm_without_outcomes() -> None:
    df = trial()
    df.loc[df["arm"] == "nim", "y"] = np.nan
    with pytest.raises(StatsInputError, match="expected at least two complete rows per arm"):
        stats.mi_compare_arms(df, "y", "arm", baseline="baseline", rng=1)
    with pytest.raises(StatsInputError, match=r"expected exactly two arms|expected at least 2"):
        stats.mi_compare_arms(trial().assign(arm="nim"), "y", "arm", rng=1)


def test_impute_survives_a_predictor_constant_within_an_arm() -> None:
    df = trial()
    df.loc[df["arm"] == "nim", "sex"] = "f"  # the sex dummy is constant within nim
    copies = stats.impute(df, ["y", "baseline", "sex"], m=2, rng=2, by="arm")
    assert all(not c[["y", "baseline"]].isna().any().any() for c in copies)


def test_mi_compare_arms_default_is_compare_arms_ancova_with_cluster() -> None:
    # the default analysis is stats.compare_arms(method="ancova"); with cluster= its CR1 SE
    # and G - 1 df are used for the complete case
    df = trial().assign(family=lambda d: np.arange(len(d)) // 2)
    r = stats.mi_compare_arms(
        df, "y", "arm", baseline="baseline", covariates=["sex"], m=2, rng=1, cluster="family"
    )
    cc = df.dropna(subset=["y", "baseline"])
    ref = stats.compare_arms(cc, "y", "arm", "baseline", ["sex"], cluster="family")
    assert r.complete_case.estimate == pytest.approx(ref.estimate, rel=1e-12)
    assert r.complete_case.se == pytest.approx(ref.se, rel=1e-12)
    assert r.summary.loc["complete case", "df"] == cc["family"].nunique() - 1
    with pytest.raises(StatsInputError, match="no column"):
        stats.mi_compare_arms(df, "y", "arm", m=2, rng=1, cluster="site")


def test_mi_compare_arms_leaves_out_outcomes_not_yet_due() -> None:
    """Missing is not the same as not yet due: with ``due=``, a row whose outcome window has
    not closed and whose outcome is missing is neither imputed nor analysed nor counted
    missing; the result is that of the same analysis of the due rows only (same seed)."""
    df = trial().assign(family=lambda d: np.arange(len(d)) // 2)
    rng = np.random.default_rng(11)
    df["due"] = rng.random(len(df)) < 0.75  # a quarter of the children not yet due ...
    df.loc[~df["due"] & (rng.random(len(df)) < 0.3), "y"] = 42.0  # ... some seen early
    waiting = ~df["due"] & df["y"].isna()
    kw = {"baseline": "baseline", "covariates": ["sex"], "m": 5, "cluster": "family"}
    r = stats.mi_compare_arms(df, "y", "arm", rng=3, due="due", **kw)  # type: ignore[arg-type]
    reached = df[~waiting]
    ref = stats.mi_compare_arms(reached, "y", "arm", rng=3, **kw)  # type: ignore[arg-type]
    assert r.n_not_yet_reached == int(waiting.sum()) > 0
    assert r.n == len(reached) and r.n_missing == ref.n_missing
    assert r.n_missing == int(reached[["y", "baseline"]].isna().any(axis=1).sum())
    assert (r.estimate, r.se, r.df) == (ref.estimate, ref.se, ref.df)
    assert r.complete_case == ref.complete_case
    assert "not yet reached" in str(r) and "not yet reached" not in str(ref)
    # without due= the same rows are imputed: another result
    everyone = stats.mi_compare_arms(df, "y", "arm", rng=3, **kw)  # type: ignore[arg-type]
    assert everyone.n == len(df) and everyone.n_missing > r.n_missing
    # a due column says True or False; a row without it is dropped, as any missing value
    with pytest.raises(StatsInputError, match="'due' holds 'True'"):
        stats.mi_compare_arms(df.assign(due=df["due"].map(str)), "y", "arm", rng=3, due="due", m=2)
    unknown = df.assign(due=df["due"].astype(object).where(df.index != 4, None))
    r4 = stats.mi_compare_arms(unknown, "y", "arm", rng=3, due="due", m=2)
    assert (r4.n_dropped, r4.dropped_by_column) == (1, {"due": 1})
    with pytest.raises(StatsInputError, match="no column"):
        stats.mi_compare_arms(df, "y", "arm", rng=3, due="window_closed", m=2)
