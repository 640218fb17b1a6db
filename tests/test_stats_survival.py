"""Kaplan–Meier, log-rank and RMST against R's survival package (figures pasted with the R call).

Data: tests/data/gehan.csv (a copy of ../shared/reference/gehan.csv, figures from its README)
and tests/data/survival_cases.csv (150 children, whole-month times with heavy ties, arm,
site, age, family; generated once with numpy, seed 20261124).  R 4.x, survival 3.5.3.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from noim import stats
from noim.stats import StatsInputError

DATA = Path(__file__).parent / "data"
REL = 1e-6  # statistics and estimates (reference README: 1e-6 relative)
SE_REL = 1e-5  # standard errors (reference README: 1e-5 relative)


@pytest.fixture(scope="module")
def gehan() -> pd.DataFrame:
    return pd.read_csv(DATA / "gehan.csv")


@pytest.fixture(scope="module")
def cases() -> pd.DataFrame:
    return pd.read_csv(DATA / "survival_cases.csv")


# ---------------------------------------------------------------- Kaplan–Meier


def test_gehan_km_medians_and_ci(gehan: pd.DataFrame) -> None:
    # survfit(Surv(time, cens) ~ treat, gehan): 6-MP median 23 (16, NA); control 8 (4, 12)
    km = stats.kaplan_meier(gehan, "time", "cens", "treat")
    assert km.median.to_dict() == {"6-MP": 23.0, "control": 8.0}
    s = km.summary
    assert s.loc["6-MP", ["n", "events"]].tolist() == [21, 9]
    assert s.loc["control", ["n", "events"]].tolist() == [21, 21]
    assert s.loc["6-MP", ["estimate", "lower"]].tolist() == [23.0, 16.0]
    assert s.loc["6-MP", "upper"] == np.inf  # R: NA (not reached)
    assert s.loc["control", ["lower", "upper"]].tolist() == [4.0, 12.0]
    assert "Kaplan-Meier" in km.method and km.n == 42
    assert "estimate = median" in str(km) and "log-type" in str(km)


def test_gehan_km_survival_and_greenwood(gehan: pd.DataFrame) -> None:
    # summary(survfit(Surv(time, cens) ~ treat, gehan)): 6-MP S(6, 10, 23) = 0.857143, 0.752941,
    # 0.448179; std.err at 23 = 0.1345915; log CI 0.248788-0.807372
    at = stats.kaplan_meier(gehan, "time", "cens", "treat").survival_at([6, 10, 23])
    mp = at[at["group"] == "6-MP"].set_index("time")
    assert mp["survival"].tolist() == pytest.approx([0.857143, 0.752941, 0.448179], abs=5e-7)
    assert mp.loc[23.0, "se"] == pytest.approx(0.1345915, rel=SE_REL)
    assert mp.loc[23.0, "lower"] == pytest.approx(0.248788, abs=5e-7)
    assert mp.loc[23.0, "upper"] == pytest.approx(0.807372, abs=5e-7)
    assert list(at.columns) == ["group", "time", "survival", "se", "lower", "upper"]


def test_km_by_arm_with_heavy_ties(cases: pd.DataFrame) -> None:
    # k <- survfit(Surv(time, event) ~ arm, d); summary(k)$table; summary(k, times = c(1, 3, 5, 10))
    # NIM: n 69, events 56, median 5 (4, 8); SAU: n 81, events 64, median 3 (3, 4)
    km = stats.kaplan_meier(cases, "time", "event", "arm")
    assert km.summary.loc["NIM"].tolist() == [69, 56, 5.0, 4.0, 8.0]
    assert km.summary.loc["SAU"].tolist() == [81, 64, 3.0, 3.0, 4.0]
    at = km.survival_at([1, 3, 5, 10])
    r = np.array(
        [  # surv, std.err, lower, upper
            [0.869565217391, 0.0405436873148, 0.793623799356, 0.952773427297],
            [0.637681159420, 0.0578658992395, 0.533779559808, 0.761807479526],
            [0.467632850242, 0.0611669809748, 0.361881807041, 0.604287030656],
            [0.240297166895, 0.0572031134259, 0.150701925892, 0.383158530164],
            [0.802469135802, 0.0442373539001, 0.720285271639, 0.894030100672],
            [0.444444444444, 0.0552115550000, 0.348398374472, 0.566968386397],
            [0.266666666667, 0.0506941465637, 0.183718429007, 0.387065747815],
            [0.206769230769, 0.0499776422798, 0.128749112795, 0.332068422569],
        ]
    )
    np.testing.assert_allclose(at[["survival", "se", "lower", "upper"]].to_numpy(), r, rtol=1e-9)
    # survfit(Surv(time, event) ~ 1, d): n 150, events 120, median 4 (3, 4)
    pooled = stats.kaplan_meier(cases, "time", "event")
    assert pooled.summary.loc["all"].tolist() == [150, 120, 4.0, 3.0, 4.0]
    assert pooled.median.index.tolist() == ["all"]


def test_km_table_counts_events_before_censorings(cases: pd.DataFrame) -> None:
    km = stats.kaplan_meier(cases, "time", "event", "arm")
    t = km.table
    assert list(t.columns) == [
        "group", "time", "n_risk", "n_event", "n_censor", "survival", "se", "lower", "upper"
    ]  # fmt: skip
    for level, part in t.groupby("group"):
        sub = cases[cases["arm"] == level]
        assert part["n_risk"].iloc[0] == len(sub)
        assert part["n_event"].sum() == sub["event"].sum()
        # n_risk at the next time = n_risk - events - censored (censored at t were at risk at t)
        nxt = (part["n_risk"] - part["n_event"] - part["n_censor"]).to_numpy()[:-1]
        assert (nxt == part["n_risk"].to_numpy()[1:]).all()
        assert np.all(np.diff(part["survival"].to_numpy()) <= 0)


def test_km_median_on_a_flat_stretch_at_one_half() -> None:
    # print(survfit(Surv(t, e) ~ 1, data.frame(t = 1:6, e = c(1, 1, 1, 0, 1, 0))))
    #   median 4 (the midpoint of the stretch [3, 5) where S = 0.5), 0.95LCL 2, 0.95UCL NA
    df = pd.DataFrame({"t": [1, 2, 3, 4, 5, 6], "e": [1, 1, 1, 0, 1, 0]})
    assert stats.kaplan_meier(df, "t", "e").summary.loc["all"].tolist() == [6, 4, 4.0, 2.0, np.inf]
    # print(survfit(Surv(t, e) ~ 1, data.frame(t = 1:4, e = c(1, 1, 0, 1)))): median 3, LCL 1, UCL NA
    df = pd.DataFrame({"t": [1, 2, 3, 4], "e": [1, 1, 0, 1]})
    assert stats.kaplan_meier(df, "t", "e").summary.loc["all"].tolist() == [4, 3, 3.0, 1.0, np.inf]


def test_km_survival_at_before_first_and_after_last_time(gehan: pd.DataFrame) -> None:
    at = stats.kaplan_meier(gehan, "time", "cens", "treat").survival_at([0, 100])
    first = at[at["time"] == 0]
    assert (first["survival"] == 1).all() and (first["se"] == 0).all()
    last = at[at["time"] == 100].set_index("group")
    assert last.loc["control", ["survival", "se", "lower", "upper"]].tolist() == [0, 0, 0, 0]
    assert last.loc["6-MP", "survival"] == pytest.approx(0.448179, abs=5e-7)  # carried forward
    with pytest.raises(StatsInputError, match="non-negative"):
        stats.kaplan_meier(gehan, "time", "cens").survival_at([-1])


def test_km_all_censored_is_flat_at_one() -> None:
    df = pd.DataFrame({"t": [1.0, 2.0, 3.0], "e": [0, 0, 0]})
    km = stats.kaplan_meier(df, "t", "e")
    assert (km.table["survival"] == 1).all() and (km.table["se"] == 0).all()
    assert km.median["all"] == np.inf
    assert km.summary.loc["all"].tolist() == [3, 0, np.inf, np.inf, np.inf]


def test_km_single_row_and_tied_times() -> None:
    # print(survfit(Surv(t, e) ~ 1, data.frame(t = 5, e = 1))): median 5, CI NA NA
    km = stats.kaplan_meier(pd.DataFrame({"t": [5.0], "e": [1]}), "t", "e")
    assert km.summary.loc["all"].tolist() == [1, 1, 5.0, np.inf, np.inf]
    assert km.table["survival"].tolist() == [0.0]
    tied = stats.kaplan_meier(pd.DataFrame({"t": [2, 2, 2, 2], "e": [1, 1, 0, 0]}), "t", "e")
    assert tied.table[["n_risk", "n_event", "n_censor"]].to_numpy().tolist() == [[4, 2, 2]]
    assert tied.table["survival"].tolist() == [0.5]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"t": [1.0, -2.0], "e": [1, 0]}), "expected values of at least 0"),
        (pd.DataFrame({"t": [1.0, 2.0], "e": [1, 2]}), "expected 0 \\(censored\\) or 1"),
        (pd.DataFrame({"t": ["a", "2"], "e": [1, 0]}), "expected numbers"),
    ],
)
def test_km_refuses_bad_input(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(StatsInputError, match=message):
        stats.kaplan_meier(frame, "t", "e")
    with pytest.raises(StatsInputError, match="no column"):
        stats.kaplan_meier(frame, "t", "e", group="arm")


# ---------------------------------------------------------------- log-rank


def test_gehan_logrank(gehan: pd.DataFrame) -> None:
    # survdiff(Surv(time, cens) ~ treat, gehan): chisq 16.79294099, p 4.168809e-05,
    # expected 6-MP 19.25050, control 10.74950
    lr = stats.logrank(gehan, "time", "cens", "treat")
    assert lr.statistic == pytest.approx(16.79294099, rel=REL)
    assert lr.pvalue == pytest.approx(4.168809e-05, rel=REL)
    assert lr.df == 1
    assert lr.expected["6-MP"] == pytest.approx(19.25050, abs=5e-6)
    assert lr.expected["control"] == pytest.approx(10.74950, abs=5e-6)
    assert lr.observed.to_dict() == {"6-MP": 9.0, "control": 21.0}
    assert "log-rank" in str(lr)


def test_logrank_ties_strata_and_three_groups(cases: pd.DataFrame) -> None:
    # survdiff(Surv(time, event) ~ arm, d): chisq 2.53714682685, obs 56 64, exp 63.79849358974 56.20150641026
    lr = stats.logrank(cases, "time", "event", "arm")
    assert lr.statistic == pytest.approx(2.53714682685, rel=1e-9)
    assert lr.expected.tolist() == pytest.approx([63.79849358974, 56.20150641026], rel=1e-10)
    # survdiff(Surv(time, event) ~ arm + strata(site), d): chisq 2.35593101886,
    # rowSums(obs) 56 64, rowSums(exp) 63.43671339628 56.56328660372
    st = stats.logrank(cases, "time", "event", "arm", strata="site")
    assert st.statistic == pytest.approx(2.35593101886, rel=1e-9)
    assert st.expected.tolist() == pytest.approx([63.43671339628, 56.56328660372], rel=1e-10)
    assert st.observed.tolist() == [56.0, 64.0]
    assert "stratified by site" in st.method
    # d$grp <- paste(d$arm, d$site); survdiff(Surv(time, event) ~ grp, d): chisq 4.79818977873 (3 df),
    # obs 24 32 27 37, exp 24.27946342383 39.51903016591 20.08282035122 36.11868605904
    three = cases.assign(grp=cases["arm"] + " " + cases["site"])
    lr3 = stats.logrank(three, "time", "event", "grp")
    assert (lr3.statistic, lr3.df) == (pytest.approx(4.79818977873, rel=1e-9), 3)
    assert lr3.observed.tolist() == [24.0, 32.0, 27.0, 37.0]
    assert lr3.expected.tolist() == pytest.approx(
        [24.27946342383, 39.51903016591, 20.08282035122, 36.11868605904], rel=1e-10
    )


def test_logrank_zero_events_in_one_group() -> None:
    # z <- data.frame(t = c(2, 3, 3, 5, 7, 8, 1, 4, 6, 9), e = c(1, 1, 1, 0, 1, 1, 0, 0, 0, 0),
    #                 g = rep(c("a", "b"), c(6, 4))); survdiff(Surv(t, e) ~ g, z)
    #   chisq 3.35113122172, obs 5 0, exp 3.08333333333 1.91666666667
    z = pd.DataFrame(
        {
            "t": [2, 3, 3, 5, 7, 8, 1, 4, 6, 9],
            "e": [1, 1, 1, 0, 1, 1, 0, 0, 0, 0],
            "g": ["a"] * 6 + ["b"] * 4,
        }
    )
    lr = stats.logrank(z, "t", "e", "g")
    assert lr.statistic == pytest.approx(3.35113122172, rel=1e-9)
    assert lr.expected.tolist() == pytest.approx([3.08333333333, 1.91666666667], rel=1e-10)
    assert lr.observed.tolist() == [5.0, 0.0]


def test_logrank_refuses_one_group_and_no_events(gehan: pd.DataFrame) -> None:
    with pytest.raises(StatsInputError, match="one level"):
        stats.logrank(gehan[gehan["treat"] == "6-MP"], "time", "cens", "treat")
    with pytest.raises(StatsInputError, match="no events"):
        stats.logrank(gehan.assign(cens=0), "time", "cens", "treat")
    with pytest.raises(StatsInputError, match="no column"):
        stats.logrank(gehan, "time", "cens", "treat", strata="site")


# ---------------------------------------------------------------- RMST


def test_gehan_rmst(gehan: pd.DataFrame) -> None:
    # print(survfit(Surv(time, cens) ~ treat, gehan), rmean = 23) (summary(...)$table):
    #   6-MP rmean 17.90924369748 se 1.55318997825; control 8.66666666667 se 1.37739004126
    r = stats.rmst(gehan, "time", "cens", "treat")
    assert r.tau == 23.0  # default: min over groups of the largest follow-up time (control: 23)
    assert r.summary["estimate"].tolist() == pytest.approx(
        [17.90924369748, 8.66666666667], rel=1e-10
    )
    assert r.summary["se"].tolist() == pytest.approx([1.55318997825, 1.37739004126], rel=1e-10)
    d = r.difference.loc["control - 6-MP"]
    assert d["estimate"] == pytest.approx(8.66666666667 - 17.90924369748, rel=1e-10)
    se = np.hypot(1.55318997825, 1.37739004126)
    assert d["se"] == pytest.approx(se, rel=1e-10)
    assert d["lower"] == pytest.approx(d["estimate"] - 1.959963984540054 * se, rel=1e-10)
    assert d["p"] == pytest.approx(2 * sps.norm.sf(abs(d["estimate"]) / se), rel=1e-9)
    # rmean = 20: 6-MP 16.11652661064 (1.25156019601), control 8.42857142857 (1.26808268250)
    r20 = stats.rmst(gehan, "time", "cens", "treat", tau=20)
    assert r20.summary["estimate"].tolist() == pytest.approx(
        [16.11652661064, 8.42857142857], rel=1e-10
    )
    assert r20.summary["se"].tolist() == pytest.approx([1.25156019601, 1.26808268250], rel=1e-10)
    assert "tau = 20" in str(r20)


def test_rmst_ties_default_tau_and_pooled(cases: pd.DataFrame) -> None:
    # tapply(d$time, d$arm, max): NIM 20, SAU 18
    # print(survfit(Surv(time, event) ~ arm, d), rmean = 18): NIM 6.78478437946 (0.675974128775),
    #   SAU 5.58049762583 (0.675838539996)
    r = stats.rmst(cases, "time", "event", "arm")
    assert r.tau == 18.0
    assert r.summary["estimate"].tolist() == pytest.approx(
        [6.78478437946, 5.58049762583], rel=1e-10
    )
    assert r.summary["se"].tolist() == pytest.approx([0.675974128775, 0.675838539996], rel=1e-10)
    assert r.difference.index.tolist() == ["SAU - NIM"]
    # survfit(Surv(time, event) ~ 1, d): rmean 6.158958783867, se 0.490200586324 (tau = max time 20)
    pooled = stats.rmst(cases, "time", "event")
    assert pooled.tau == 20.0
    assert pooled.summary.loc["all", ["estimate", "se"]].tolist() == pytest.approx(
        [6.158958783867, 0.490200586324], rel=1e-10
    )
    assert pooled.difference.empty


def test_rmst_edge_cases(gehan: pd.DataFrame) -> None:
    with pytest.raises(StatsInputError, match="expected tau at most 23"):
        stats.rmst(gehan, "time", "cens", "treat", tau=30)
    with pytest.raises(StatsInputError, match="positive number"):
        stats.rmst(gehan, "time", "cens", "treat", tau=0)
    # every observation censored up to tau: refused (the RMST would be tau with variance 0)
    with pytest.raises(StatsInputError, match="no events up to tau = 3"):
        stats.rmst(pd.DataFrame({"t": [1.0, 4.0], "e": [0, 1]}), "t", "e", tau=3)
