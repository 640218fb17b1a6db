"""Competing risks (noim.stats.competing, noim.stats.finegray) against R's cmprsk.

Reference data: ../shared/reference/bmt35.csv (figures from its README) and
tests/data/competing200.csv, generated once, deterministically, by

    rng = np.random.default_rng(20261124); n = 200
    group = rng.choice(["A", "B", "C"], n); x1 = round(rng.normal(size=n), 3)
    x2 = rng.integers(0, 2, n); lin = 0.5 x1 - 0.4 x2 + 0.3 [B] - 0.3 [C]
    t1 = rng.exponential(20 exp(-lin)); t2 = rng.exponential(30, n); c = rng.uniform(5, 60, n)
    time = ceil(min(t1, t2, c)) (whole days: many ties, also across causes), status 0/1/2

R figures were produced with R 4.x, cmprsk 2.2 (calls pasted beside each).  Tolerance: the
README's for bmt35 (1e-8 cumulative incidence, 1e-6 variances and Gray's statistic) and
1e-6 relative for everything computed here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from noim import stats
from noim.stats import StatsInputError

REFERENCE = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference"
DATA = Path(__file__).resolve().parent / "data"


def _bmt35() -> pd.DataFrame:
    for base in (REFERENCE, Path("/work/shared/reference"), DATA):
        path = base / "bmt35.csv"
        if path.exists():
            return pd.read_csv(path)
    pytest.skip("bmt35.csv not found")


@pytest.fixture
def bmt35() -> pd.DataFrame:
    return _bmt35()


@pytest.fixture
def comp200() -> pd.DataFrame:
    return pd.read_csv(DATA / "competing200.csv")


def _row(res: pd.DataFrame, group: object, cause: int, time: float) -> pd.Series:
    sel = res[(res["group"] == group) & (res["cause"] == cause) & (res["time"] == time)]
    assert len(sel) == 1
    return sel.iloc[0]


# --- cumulative incidence -------------------------------------------------------------

# README: cmprsk::cuminc(ftime, status, dis); dis 0 = ALL, 1 = AML; cause 1 relapse, 2 death
BMT_CIF = {
    (0, 1): [0.1176470588, 0.1764705882, 0.1764705882, 0.1764705882],
    (1, 1): [0.3681857639, 0.3681857639, 0.3681857639, 0.3681857639],
    (0, 2): [0.4705882353, 0.5882352941, 0.7058823529, 0.7058823529],
    (1, 2): [0.2057074653, 0.2057074653, 0.2057074653, 0.2057074653],
}
BMT_VAR20 = {(0, 1): 0.009344168872, (1, 1): 0.016011046006, (0, 2): 0.016046477745,
             (1, 2): 0.013358379356}  # fmt: skip


def test_cif_bmt35_matches_readme(bmt35: pd.DataFrame) -> None:
    res = stats.cumulative_incidence(bmt35, "ftime", "status", group="dis")
    at = res.at([10, 20, 40, 60])
    assert list(at.columns) == ["group", "cause", "time", "estimate", "variance", "lower", "upper"]
    for (g, k), values in BMT_CIF.items():
        for t, expected in zip([10, 20, 40, 60], values, strict=True):
            assert _row(at, g, k, t)["estimate"] == pytest.approx(expected, abs=1e-8)
    for (g, k), expected in BMT_VAR20.items():
        assert _row(at, g, k, 20)["variance"] == pytest.approx(expected, rel=1e-6)


def test_cif_variance_bmt35_at_10(bmt35: pd.DataFrame) -> None:
    # print(timepoints(cuminc(d$ftime, d$status, d$dis), 10)$var, digits = 12)
    expected = {(0, 1): 0.00648981161092, (1, 1): 0.01601104600598,
                (0, 2): 0.01595494992793, (1, 2): 0.01335837935596}  # fmt: skip
    at = stats.cumulative_incidence(bmt35, "ftime", "status", "dis").at(10)
    for (g, k), v in expected.items():
        assert _row(at, g, k, 10)["variance"] == pytest.approx(v, rel=1e-6)


# r <- cuminc(e$time, e$status, e$group); print(timepoints(r, c(5, 10, 20, 40)), digits = 12)
COMP_EST = {
    ("A", 1): [0.134328358209, 0.247223186394, 0.390173921180, 0.498696520959],
    ("B", 1): [0.378787878788, 0.533143939394, 0.602137445887, None],
    ("C", 1): [0.104477611940, 0.202985074627, 0.364444226237, 0.364444226237],
    ("A", 2): [0.164179104478, 0.230236896911, 0.326563699736, 0.469114572327],
    ("B", 2): [0.212121212121, 0.273674242424, 0.324269480519, None],
    ("C", 2): [0.208955223881, 0.338619402985, 0.431412018853, 0.559001865672],
}
COMP_VAR = {
    ("A", 1): [0.00176026878376, 0.00293764345685, 0.00402090660089, 0.00557531631756],
    ("B", 1): [0.00355439222623, 0.00375173223220, 0.00371120716394, None],
    ("C", 1): [0.00141458984659, 0.00258162409962, 0.00392917685535, 0.00392917685535],
    ("A", 2): [0.00207723817737, 0.00277573078490, 0.00377315128450, 0.00521228091726],
    ("B", 2): [0.00251963856040, 0.00298807269781, 0.00336554175492, None],
    ("C", 2): [0.00249598284899, 0.00353784915678, 0.00410124769284, 0.00567313248012],
}


def test_cif_three_groups_with_ties_match_cmprsk(comp200: pd.DataFrame) -> None:
    at = stats.cumulative_incidence(comp200, "time", "status", "group").at([5, 10, 20, 40])
    for key in COMP_EST:
        for i, t in enumerate([5, 10, 20, 40]):
            row = _row(at, key[0], key[1], t)
            if COMP_EST[key][i] is None:  # beyond group B's last follow-up: NA in cmprsk
                assert np.isnan(row["estimate"]) and np.isnan(row["variance"])
                continue
            assert row["estimate"] == pytest.approx(COMP_EST[key][i], rel=1e-6)
            assert row["variance"] == pytest.approx(COMP_VAR[key][i], rel=1e-6)


def test_cif_log_log_interval(bmt35: pd.DataFrame) -> None:
    # lower/upper = F^exp(∓1.959964 sd / (F log F)), computed by hand for ALL relapse at t = 20
    at = stats.cumulative_incidence(bmt35, "ftime", "status", "dis").at(20)
    row = _row(at, 0, 1, 20)
    f, sd = 0.1764705882352941, np.sqrt(0.009344168872323099)
    k = 1.959963984540054 * sd / (f * np.log(f))
    assert row["lower"] == pytest.approx(f ** np.exp(-k), rel=1e-9)
    assert row["upper"] == pytest.approx(f ** np.exp(k), rel=1e-9)
    assert row["lower"] < f < row["upper"]


def test_cif_table_summary_and_str(bmt35: pd.DataFrame) -> None:
    res = stats.cumulative_incidence(bmt35, "ftime", "status", "dis")
    assert res.n == 35 and "Aalen-Johansen" in res.method
    table = res.table
    assert {"group", "cause", "time", "n_risk", "n_event", "estimate"} <= set(table.columns)
    first = table[(table.group == 1) & (table.cause == 1)].iloc[0]
    assert (first["time"], first["n_risk"], first["estimate"]) == (0.0, 18, 0.0)
    # ALL has a relapse and a death at time 0: the time-0 row is that event's step
    zero = table[(table.group == 0) & (table.cause == 1)].iloc[0]
    assert (zero["time"], zero["n_event"]) == (0.0, 1)
    assert zero["estimate"] == pytest.approx(1 / 17)
    # steps are non-decreasing, and the two causes never sum above 1
    for _, block in table.groupby(["group", "cause"], observed=True):
        assert (np.diff(block["estimate"].to_numpy()) >= 0).all()
    assert res.summary.loc[(0, 2), "events"] == 12
    assert res.summary.loc[(1, 1), "estimate"] == pytest.approx(0.3681857639, abs=1e-8)
    text = str(res)
    assert "Aalen-Johansen" in text and "n = 35" in text and "estimate" in text


def test_cif_no_group_and_sum_with_survival() -> None:
    df = pd.DataFrame({"t": [1, 2, 2, 3, 4, 5, 5, 6], "e": [1, 2, 1, 0, 2, 1, 0, 1]})
    res = stats.cumulative_incidence(df, "t", "e")
    at = res.at([0, 2, 6])
    assert set(at["group"]) == {"all"}
    # at t = 6 everyone has had an event or been censored before: F1 + F2 = 1 - S(6) = 1
    total = at[at.time == 6]["estimate"].sum()
    assert total == pytest.approx(1.0)
    assert (at[at.time == 0]["estimate"] == 0).all()


def test_cif_tied_times_across_causes() -> None:
    # two events of different causes and a censoring at t = 2: both causes share the risk set
    df = pd.DataFrame({"t": [1, 2, 2, 2, 3, 4], "e": [0, 1, 2, 0, 1, 0]})
    at = stats.cumulative_incidence(df, "t", "e").at(2)
    assert at.set_index("cause").loc[1, "estimate"] == pytest.approx(1 / 5)
    assert at.set_index("cause").loc[2, "estimate"] == pytest.approx(1 / 5)


def test_cif_cause_without_events_in_a_group() -> None:
    df = pd.DataFrame(
        {"t": [1, 2, 3, 4, 1, 2, 3, 4], "e": [1, 2, 1, 0, 1, 1, 0, 0], "g": list("aaaabbbb")}
    )
    at = stats.cumulative_incidence(df, "t", "e", "g").at([1, 3])
    b2 = at[(at.group == "b") & (at.cause == 2)]
    assert (b2["estimate"] == 0).all() and (b2["variance"] == 0).all()
    assert (b2["lower"] == 0).all() and (b2["upper"] == 0).all()


def test_cif_absent_cause_value() -> None:
    # causes are 1..max(event): a cause value that never occurs (2 here) has a zero curve
    df = pd.DataFrame({"t": [1, 2, 3, 4, 5], "e": [1, 3, 0, 1, 3]})
    res = stats.cumulative_incidence(df, "t", "e")
    assert res.causes == (1, 2, 3)
    at = res.at([5]).set_index("cause")
    assert at.loc[2, "estimate"] == 0 and at.loc[2, "variance"] == 0
    assert at.loc[1, "estimate"] + at.loc[3, "estimate"] == pytest.approx(1.0)


def test_group_all_censored_matches_cmprsk() -> None:
    # r <- cuminc(c(1,2,3,4,1,2,3), c(1,2,0,1,0,0,0), c("a","a","a","a","b","b","b"))
    # r$Tests: 0.75 (p 0.386476230771), 0.487951807229 (p 0.484842381641)
    # timepoints(r, c(2, 3.5)): b is 0 at 2 (variance 0) and NA at 3.5; a 2: var 0.0694444444444
    df = pd.DataFrame(
        {"t": [1, 2, 3, 4, 1, 2, 3], "e": [1, 2, 0, 1, 0, 0, 0], "g": list("aaaabbb")}
    )
    res = stats.cumulative_incidence(df, "t", "e", "g")
    at = res.at([2, 3.5])
    b = at[at.group == "b"]
    assert (b[b.time == 2]["estimate"] == 0).all() and b[b.time == 3.5]["estimate"].isna().all()
    assert _row(at, "a", 2, 3.5)["variance"] == pytest.approx(0.0694444444444, rel=1e-9)
    assert res.summary.loc[("b", 1), "events"] == 0
    assert res.summary.loc[("b", 1), "last_time"] == 3.0
    assert not res.summary.isna().any().any()
    one = stats.gray_test(df, "t", "e", "g", cause=1)
    two = stats.gray_test(df, "t", "e", "g", cause=2)
    assert one.statistic == pytest.approx(0.75, rel=1e-9)
    assert one.pvalue == pytest.approx(0.386476230771, rel=1e-9)
    assert two.statistic == pytest.approx(0.487951807229, rel=1e-9)


def test_cif_refuses_bad_input() -> None:
    df = pd.DataFrame({"t": [1, 2, 3], "e": [0, 0, 0]})
    with pytest.raises(StatsInputError, match="only 0"):
        stats.cumulative_incidence(df, "t", "e")
    with pytest.raises(StatsInputError, match="'e'"):
        stats.cumulative_incidence(df.assign(e=[1, -1, 0]), "t", "e")
    with pytest.raises(StatsInputError, match="no column"):
        stats.cumulative_incidence(df, "time", "e")
    res = stats.cumulative_incidence(df.assign(e=[1, 0, 2]), "t", "e")
    with pytest.raises(StatsInputError, match="non-negative"):
        res.at([-1])


# --- Gray's test -------------------------------------------------------------------------


def test_gray_structure(bmt35: pd.DataFrame) -> None:
    res = stats.gray_test(bmt35, "ftime", "status", "dis", cause=2)
    assert res.df == 1 and 0 < res.pvalue < 1 and res.statistic > 0
    assert res.score.sum() == pytest.approx(0, abs=1e-9)
    assert "Gray" in str(res) and res.n == 35


def test_gray_three_groups_df(comp200: pd.DataFrame) -> None:
    res = stats.gray_test(comp200, "time", "status", "group", cause=1)
    assert res.df == 2 and list(res.score.index) == ["A", "B", "C"]


def test_gray_bmt35_matches_readme(bmt35: pd.DataFrame) -> None:
    # README: cmprsk::cuminc(ftime, status, dis)$Tests
    relapse = stats.gray_test(bmt35, "ftime", "status", "dis", cause=1)
    death = stats.gray_test(bmt35, "ftime", "status", "dis", cause=2)
    assert relapse.statistic == pytest.approx(1.301634544, rel=1e-6)
    assert relapse.pvalue == pytest.approx(0.2539149, rel=1e-6)
    assert death.statistic == pytest.approx(7.082278025, rel=1e-6)
    assert death.pvalue == pytest.approx(0.007784998, rel=1e-6)


def test_gray_three_groups_match_cmprsk(comp200: pd.DataFrame) -> None:
    # print(cuminc(e$time, e$status, e$group)$Tests, digits = 12)
    one = stats.gray_test(comp200, "time", "status", "group", cause=1)
    two = stats.gray_test(comp200, "time", "status", "group", cause=2)
    assert one.statistic == pytest.approx(18.12562087019, rel=1e-6)
    assert one.pvalue == pytest.approx(0.00011589679802, rel=1e-6)
    assert two.statistic == pytest.approx(1.65963838933, rel=1e-6)
    assert two.pvalue == pytest.approx(0.43612813348748, rel=1e-6)


def test_gray_strata_match_cmprsk(comp200: pd.DataFrame) -> None:
    # print(cuminc(e$time, e$status, e$group, strata = e$x2)$Tests, digits = 12)
    one = stats.gray_test(comp200, "time", "status", "group", strata="x2")
    assert one.df == 2 and "stratified" in one.method
    assert one.statistic == pytest.approx(20.73628782650, rel=1e-6)
    assert one.pvalue == pytest.approx(3.1417549709e-05, rel=1e-6)
    two = stats.gray_test(comp200, "time", "status", "group", cause=2, strata="x2")
    assert two.statistic == pytest.approx(1.74930115547, rel=1e-6)
    assert two.pvalue == pytest.approx(4.1700770600e-01, rel=1e-6)
    # one stratum level for everyone gives the unstratified test
    same = stats.gray_test(comp200.assign(s=1), "time", "status", "group", strata="s")
    plain = stats.gray_test(comp200, "time", "status", "group")
    assert same.statistic == pytest.approx(plain.statistic, rel=1e-12)


def test_gray_three_causes_pool_the_others(comp200: pd.DataFrame) -> None:
    # e3 <- e; e3$status[e3$status == 2 & e3$x2 == 1] <- 3
    # print(cuminc(e3$time, e3$status, e3$group)$Tests, digits = 12)
    e3 = comp200.assign(
        status=np.where((comp200.status == 2) & (comp200.x2 == 1), 3, comp200.status)
    )
    expected = {1: 18.12562087019, 2: 9.39181532328, 3: 2.03956930163}
    for cause, value in expected.items():
        res = stats.gray_test(e3, "time", "status", "group", cause=cause)
        assert res.statistic == pytest.approx(value, rel=1e-6)


@pytest.mark.parametrize(
    ("time", "status", "group", "expected"),
    [
        # no competing events: Gray's test is close to, not equal to, the log-rank test;
        # cat(sprintf("%.15g", cuminc(t, s, g)$Tests[1, 1]))
        ([1, 3, 5, 2, 4, 6], [1] * 6, [1, 1, 1, 2, 2, 2], 0.483015326658208),
        ([1, 3, 2], [1, 1, 1], [1, 1, 2], 0.0584415584415584),
        ([1, 2, 3, 4], [1, 1, 1, 1], [1, 2, 1, 2], 0.612990122717749),
        ([1, 2, 3, 4], [1, 1, 0, 1], [1, 2, 1, 2], 0.0574506283662478),
        ([1, 2, 3, 4], [1, 0, 1, 1], [1, 2, 1, 2], 2.18754688672168),
    ],
)
def test_gray_tiny_cases(time: list, status: list, group: list, expected: float) -> None:
    df = pd.DataFrame({"t": time, "s": status, "g": group})
    assert stats.gray_test(df, "t", "s", "g").statistic == pytest.approx(expected, rel=1e-9)


def test_gray_bmt35_relapse_without_competing(bmt35: pd.DataFrame) -> None:
    # s <- ifelse(b$status == 2, 0, b$status); cuminc(b$ftime, s, b$dis)$Tests: 0.850646623393
    df = bmt35.assign(status=np.where(bmt35.status == 2, 0, bmt35.status))
    res = stats.gray_test(df, "ftime", "status", "dis")
    assert res.statistic == pytest.approx(0.850646623393, rel=1e-6)
    assert res.pvalue == pytest.approx(0.356369475505, rel=1e-6)


def test_gray_refuses(bmt35: pd.DataFrame) -> None:
    with pytest.raises(StatsInputError, match="at least 2"):
        stats.gray_test(bmt35.assign(g=1), "ftime", "status", "g")
    with pytest.raises(StatsInputError, match="no events of cause 3"):
        stats.gray_test(bmt35, "ftime", "status", "dis", cause=3)
    with pytest.raises(StatsInputError, match="cause=0"):
        stats.gray_test(bmt35, "ftime", "status", "dis", cause=0)
    with pytest.raises(StatsInputError, match="no events of cause 1"):
        stats.gray_test(bmt35.assign(status=0), "ftime", "status", "dis")


# --- Fine–Gray ------------------------------------------------------------------------


def _check(summary: pd.DataFrame, expected: dict[str, tuple[float, float, float]]) -> None:
    assert list(summary.columns) == ["estimate", "se", "lower", "upper", "statistic", "p", "coef"]
    assert list(summary.index) == list(expected)
    for name, (coef, se, p) in expected.items():
        assert summary.loc[name, "coef"] == pytest.approx(coef, rel=1e-6)
        assert summary.loc[name, "se"] == pytest.approx(se, rel=1e-6)
        assert summary.loc[name, "p"] == pytest.approx(p, rel=1e-6)
        assert summary.loc[name, "estimate"] == pytest.approx(np.exp(coef), rel=1e-6)


# R: show <- function(f) { co <- f$coef; se <- sqrt(diag(f$var)); p <- 2*pnorm(-abs(co/se))
#      print(sprintf("%s coef %.12g se %.12g p %.12g", names(co), co, se, p)) }
# Every crr call below adds gtol = 1e-12: crr's default (1e-6) stops Newton-Raphson early
# (e.g. 0.689108 instead of coxph's 0.689111 in the no-competing test); noim iterates to
# convergence.
# show(crr(d$ftime, d$status, cbind(dis = d$dis), failcode = k))   # d = bmt35
@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        (1, {"dis": (0.765170285613, 0.698790210341, 0.273519767894)}),
        (2, {"dis": (-1.60446621866, 0.640313040766, 0.0122191001563)}),
    ],
)
def test_fine_gray_bmt35(bmt35: pd.DataFrame, cause: int, expected: dict) -> None:
    res = stats.fine_gray(bmt35, "ftime", "status", ["dis"], cause=cause)
    _check(res.summary, expected)
    assert res.events == int((bmt35.status == cause).sum())


# show(crr(e$time, e$status, cbind(x1 = e$x1, x2 = e$x2), failcode = k))  # e = competing200
@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        (1, {"x1": (0.394451467809, 0.11109053851, 0.000384177968198),
             "x2": (-0.427820020045, 0.221775420575, 0.0537223353297)}),
        (2, {"x1": (-0.341446024992, 0.115320408015, 0.00306794815333),
             "x2": (0.388673209785, 0.219484335991, 0.0765861236628)}),
    ],
)  # fmt: skip
def test_fine_gray_two_covariates_with_ties(
    comp200: pd.DataFrame, cause: int, expected: dict
) -> None:
    res = stats.fine_gray(comp200, "time", "status", ["x1", "x2"], cause=cause)
    _check(res.summary, expected)


def test_fine_gray_categorical_and_reference(comp200: pd.DataFrame) -> None:
    # X <- cbind(x1 = e$x1, gB = e$group == "B", gC = e$group == "C"); show(crr(e$time, e$status, X))
    res = stats.fine_gray(comp200, "time", "status", ["x1", "group"])
    _check(res.summary, {"x1": (0.466602759544, 0.109676927478, 2.09668054835e-05),
                         "group[T.B]": (0.658757850873, 0.233923734905, 0.00486071563644),
                         "group[T.C]": (-0.297957384451, 0.263350275659, 0.257882166602)})  # fmt: skip
    # X <- cbind(x1 = e$x1, gA = e$group == "A", gC = e$group == "C")
    res = stats.fine_gray(comp200, "time", "status", ["x1", "group"], reference={"group": "B"})
    _check(res.summary, {"x1": (0.466602759544, 0.109676927478, 2.09668054835e-05),
                         "group[T.A]": (-0.658757850873, 0.233923734905, 0.00486071563644),
                         "group[T.C]": (-0.956715235324, 0.250588772758, 0.000134609086279)})  # fmt: skip
    assert "Fine-Gray" in str(res) and res.n == 200


def test_fine_gray_no_competing_events_is_cox_breslow() -> None:
    # without competing events the weights are all 1: the Cox model with Breslow ties and
    # the robust (sandwich) se; R: f <- coxph(Surv(t, e) ~ x, df, ties = "breslow",
    # robust = TRUE): coef 0.689111009638, se 0.79628112841; crr(..., gtol = 1e-12) the same
    df = pd.DataFrame(
        {
            "t": [1, 2, 2, 3, 4, 5, 6, 7],
            "e": [1, 1, 0, 1, 0, 1, 1, 0],
            "x": [1, 0, 1, 1, 0, 0, 1, 0],
        }
    )
    res = stats.fine_gray(df, "t", "e", ["x"])
    assert res.competing == 0
    assert res.summary.loc["x", "coef"] == pytest.approx(0.689111009638, rel=1e-6)
    assert res.summary.loc["x", "se"] == pytest.approx(0.79628112841, rel=1e-6)
    assert res.summary.loc["x", "p"] == pytest.approx(0.386812858363, rel=1e-6)


def test_fine_gray_refuses(bmt35: pd.DataFrame) -> None:
    with pytest.raises(StatsInputError, match="no events of cause 3"):
        stats.fine_gray(bmt35, "ftime", "status", ["dis"], cause=3)
    with pytest.raises(StatsInputError, match="no events of cause 1"):
        stats.fine_gray(bmt35.assign(status=0), "ftime", "status", ["dis"])
    with pytest.raises(StatsInputError, match="constant"):
        stats.fine_gray(bmt35.assign(c=1.0), "ftime", "status", ["c"])
    with pytest.raises(StatsInputError, match="reference names 'x', which is not among"):
        stats.fine_gray(bmt35, "ftime", "status", ["dis"], reference={"x": 1})
    with pytest.raises(StatsInputError, match="no column"):
        stats.fine_gray(bmt35, "ftime", "status", ["age"])
    # AML (dis = 1) has no events of cause 1 here: the coefficient is infinite
    no_events = bmt35[~((bmt35.dis == 1) & (bmt35.status == 1))]
    with pytest.raises(StatsInputError, match="converge"):
        stats.fine_gray(no_events, "ftime", "status", ["dis"], cause=1)
