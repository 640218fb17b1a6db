"""The Cox model against R's ``coxph`` (survival 3.5.3; figures pasted with the R call).

Data: tests/data/gehan.csv (../shared/reference/gehan.csv) and tests/data/survival_cases.csv
(150 children, whole-month times with heavy ties; see tests/test_stats_survival.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from noim import stats
from noim.stats import StatsInputError
from noim.stats.cox import CoxConvergenceWarning

DATA = Path(__file__).parent / "data"
REL = 1e-6  # coefficients and log-likelihoods (reference README)
SE_REL = 1e-5  # standard errors (reference README)
COLUMNS = ["estimate", "se", "lower", "upper", "statistic", "p", "coef"]


@pytest.fixture(scope="module")
def gehan() -> pd.DataFrame:
    return pd.read_csv(DATA / "gehan.csv")


@pytest.fixture(scope="module")
def cases() -> pd.DataFrame:
    return pd.read_csv(DATA / "survival_cases.csv")


def test_gehan_efron(gehan: pd.DataFrame) -> None:
    # coxph(Surv(time, cens) ~ treat, gehan): coef 1.572125149, se 0.4123967177,
    # HR 4.816874 (2.146508-10.80931); loglik null -93.18427, fitted -85.00842458
    fit = stats.cox(gehan, "time", "cens", ["treat"])
    s = fit.summary
    assert list(s.columns) == COLUMNS
    assert s.index.tolist() == ["treat[T.control]"]
    row = s.loc["treat[T.control]"]
    assert row["coef"] == pytest.approx(1.572125149, rel=REL)
    assert row["se"] == pytest.approx(0.4123967177, rel=SE_REL)
    assert row["estimate"] == pytest.approx(4.816874, rel=REL)
    assert row["lower"] == pytest.approx(2.146508, rel=REL)
    assert row["upper"] == pytest.approx(10.80931, rel=REL)
    assert row["statistic"] == pytest.approx(1.572125149 / 0.4123967177, rel=SE_REL)
    assert fit.loglik_null == pytest.approx(-93.18427, rel=REL)
    assert fit.loglik == pytest.approx(-85.00842458, rel=REL)
    assert fit.ties == "efron" and fit.events == 30 and fit.n == 42 and fit.converged
    assert "efron" in str(fit) and "log-likelihood null -93.18" in str(fit)


def test_gehan_breslow(gehan: pd.DataFrame) -> None:
    # coxph(Surv(time, cens) ~ treat, gehan, ties = "breslow"): coef 1.5091914, se 0.4095644
    fit = stats.cox(gehan, "time", "cens", "treat", ties="breslow")
    assert fit.summary.loc["treat[T.control]", "coef"] == pytest.approx(1.5091914, rel=REL)
    assert fit.summary.loc["treat[T.control]", "se"] == pytest.approx(0.4095644, rel=SE_REL)


@pytest.mark.parametrize(
    ("ties", "coef", "robust", "naive"),
    [
        # coxph(Surv(time, cens) ~ treat + cluster(pair), gehan): coef 1.572125148829,
        #   sqrt(diag(f$var)) 0.391136167317, sqrt(diag(f$naive.var)) 0.412396717709
        ("efron", 1.572125148829, 0.391136167317, 0.412396717709),
        # same with ties = "breslow": 1.509191412586, robust 0.375976691534, naive 0.409564406367
        ("breslow", 1.509191412586, 0.375976691534, 0.409564406367),
    ],
)
def test_gehan_robust_by_pair(
    gehan: pd.DataFrame, ties: str, coef: float, robust: float, naive: float
) -> None:
    fit = stats.cox(gehan, "time", "cens", ["treat"], cluster="pair", ties=ties)
    row = fit.summary.loc["treat[T.control]"]
    assert row["coef"] == pytest.approx(coef, rel=1e-9)
    assert row["se"] == pytest.approx(robust, rel=1e-8)
    assert fit.naive_se["treat[T.control]"] == pytest.approx(naive, rel=1e-8)
    assert row["statistic"] == pytest.approx(coef / robust, rel=1e-8)
    assert "robust" in str(fit)


@pytest.mark.parametrize(
    ("ties", "coef", "se", "loglik"),
    [
        # d <- read.csv("tests/data/survival_cases.csv")
        # f <- coxph(Surv(time, event) ~ arm + age, d); coef(f); sqrt(diag(f$var)); f$loglik
        (
            "efron",
            [0.280498179067, 0.144913196313],
            [0.1857060928734, 0.0703455409471],
            [-501.807354811, -498.355901630],
        ),
        # same with ties = "breslow"
        (
            "breslow",
            [0.251163114118, 0.132400811817],
            [0.1859671137239, 0.0701404535716],
            [-512.865026524, -510.027546450],
        ),
    ],
)
def test_two_covariates_with_heavy_ties(
    cases: pd.DataFrame, ties: str, coef: list[float], se: list[float], loglik: list[float]
) -> None:
    fit = stats.cox(cases, "time", "event", ["arm", "age"], ties=ties)
    assert fit.summary.index.tolist() == ["arm[T.SAU]", "age"]
    np.testing.assert_allclose(fit.summary["coef"], coef, rtol=1e-9)
    np.testing.assert_allclose(fit.summary["se"], se, rtol=1e-9)
    np.testing.assert_allclose([fit.loglik_null, fit.loglik], loglik, rtol=1e-10)
    assert fit.iterations == 3  # f$iter


@pytest.mark.parametrize(
    ("ties", "coef", "se"),
    [
        # f <- coxph(Surv(time, event) ~ arm + age + site, d, cluster = family); coef(f); sqrt(diag(f$var))
        (
            "efron",
            [0.288796650173, 0.144853204803, -0.269192018298],
            [0.184550887607, 0.066236528381, 0.185305507872],
        ),
        # same with ties = "breslow"
        (
            "breslow",
            [0.258495423844, 0.132490606097, -0.248721579956],
            [0.1693280851980, 0.0593400012446, 0.1684033950265],
        ),
    ],
)
def test_robust_by_family_with_heavy_ties(
    cases: pd.DataFrame, ties: str, coef: list[float], se: list[float]
) -> None:
    fit = stats.cox(cases, "time", "event", ["arm", "age", "site"], cluster="family", ties=ties)
    assert fit.summary.index.tolist() == ["arm[T.SAU]", "age", "site[T.Glasgow]"]
    np.testing.assert_allclose(fit.summary["coef"], coef, rtol=1e-9)
    np.testing.assert_allclose(fit.summary["se"], se, rtol=1e-9)


def test_reference_level(cases: pd.DataFrame) -> None:
    # d$arm2 <- relevel(factor(d$arm), "SAU"); coef(coxph(Surv(time, event) ~ arm2 + age, d))
    #   arm2NIM -0.280498179067, age 0.144913196313
    fit = stats.cox(cases, "time", "event", ["arm", "age"], reference={"arm": "SAU"})
    assert fit.summary.index.tolist() == ["arm[T.NIM]", "age"]
    np.testing.assert_allclose(fit.coef, [-0.280498179067, 0.144913196313], rtol=1e-9)
    with pytest.raises(StatsInputError, match="reference 'ABC' is not a level of 'arm'"):
        stats.cox(cases, "time", "event", ["arm"], reference={"arm": "ABC"})
    with pytest.raises(StatsInputError, match="reference names 'arm', which is not among"):
        stats.cox(cases, "time", "event", ["age"], reference={"arm": "SAU"})
    with pytest.raises(StatsInputError, match="numeric column 'age'"):
        stats.cox(cases, "time", "event", ["age"], reference={"age": 1})


def test_row_order_does_not_matter(cases: pd.DataFrame) -> None:
    a = stats.cox(cases, "time", "event", ["arm", "age"], cluster="family")
    shuffled = cases.sample(frac=1.0, random_state=np.random.default_rng(3).integers(1 << 30))
    b = stats.cox(shuffled, "time", "event", ["arm", "age"], cluster="family")
    pd.testing.assert_frame_equal(a.summary, b.summary, rtol=1e-10)


def test_zero_events_in_one_level_warns() -> None:
    # coxph(Surv(t, e) ~ g, z): "Loglik converged before variable 1; coefficient may be infinite"
    z = pd.DataFrame(
        {
            "t": [2, 3, 3, 5, 7, 8, 1, 4, 6, 9],
            "e": [1, 1, 1, 0, 1, 1, 0, 0, 0, 0],
            "g": ["a"] * 6 + ["b"] * 4,
        }
    )
    with pytest.warns(CoxConvergenceWarning, match="may be\\s+infinite"):
        fit = stats.cox(z, "t", "e", ["g"])
    assert not fit.converged
    assert fit.coef["g[T.b]"] < -10  # diverging towards -inf (R stops at -20.9)


@pytest.mark.parametrize(
    ("frame", "kwargs", "message"),
    [
        (pd.DataFrame({"t": [1, 2, 3], "e": [0, 0, 0], "x": [1, 2, 3]}), {}, "no events"),
        (pd.DataFrame({"t": [1, -2, 3], "e": [1, 0, 1], "x": [1, 2, 3]}), {}, "at least 0"),
        (pd.DataFrame({"t": [1, 2, 3], "e": [1, 0, 1], "x": [2, 2, 2]}), {}, "constant"),
        (pd.DataFrame({"t": [5], "e": [1], "x": [1.0]}), {}, "constant"),
        (
            pd.DataFrame({"t": [1, 2, 3], "e": [1, 0, 1], "x": ["a", "a", "a"]}),
            {},
            "expected at least 2",
        ),
        (
            pd.DataFrame({"t": [1, 2, 3, 4], "e": [1, 1, 1, 1], "x": [1, 3, 2, 4], "c": 7}),
            {"cluster": "c"},
            "has 1 cluster; expected at least 2 clusters",
        ),
        (
            pd.DataFrame({"t": [1, 2, 3], "e": [1, 0, 1], "x": [1, 2, 3]}),
            {"ties": "exact"},
            "efron",
        ),
        (
            pd.DataFrame({"t": [1, 2, 3], "e": [1, 0, 1], "x": [1, 2, 3]}),
            {"cluster": "id"},
            "no column",
        ),
    ],
)
def test_refused_input(frame: pd.DataFrame, kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(StatsInputError, match=message):
        stats.cox(frame, "t", "e", ["x"], **kwargs)


def test_collinear_covariates_refused(cases: pd.DataFrame) -> None:
    with pytest.raises(StatsInputError, match="singular"):
        stats.cox(cases.assign(age2=2 * cases["age"]), "time", "event", ["age", "age2"])
    with pytest.raises(StatsInputError, match="no covariates"):
        stats.cox(cases, "time", "event", [])


def test_large_untied_data_matches_a_direct_computation() -> None:
    """Efron = Breslow without ties; the score is zero at the estimate (checked independently)."""
    rng = np.random.default_rng(11)
    n = 2000
    x = rng.normal(size=(n, 2))
    t = rng.exponential(1 / np.exp(x @ [0.7, -0.4]))
    c = rng.exponential(1.5, n)
    df = pd.DataFrame(
        {"t": np.minimum(t, c), "e": (t <= c).astype(int), "a": x[:, 0], "b": x[:, 1]}
    )
    efron = stats.cox(df, "t", "e", ["a", "b"])
    breslow = stats.cox(df, "t", "e", ["a", "b"], ties="breslow")
    np.testing.assert_allclose(efron.coef, breslow.coef, rtol=1e-12)
    # score by brute force (O(n^2)): sum over events of x_i - weighted mean over {t_j >= t_i}
    beta = efron.coef.to_numpy()
    w = np.exp(x @ beta)
    at_risk = df["t"].to_numpy()[None, :] >= df["t"].to_numpy()[:, None]
    means = (at_risk * w) @ x / (at_risk * w).sum(axis=1)[:, None]
    score = (df["e"].to_numpy()[:, None] * (x - means)).sum(axis=0)
    assert np.abs(score).max() < 1e-6


@pytest.mark.parametrize(
    ("ties", "coef", "se", "robust", "loglik"),
    [
        # f <- coxph(Surv(time, event) ~ arm + age + strata(site), d, ties = ties)
        # coef(f); sqrt(diag(f$var)); f$loglik; f$iter (3)
        # g <- coxph(Surv(time, event) ~ arm + age + strata(site), d, cluster = family, ties = ties)
        # sqrt(diag(g$var))
        (
            "efron",
            [0.269129090496931, 0.162159047598938],
            [0.1858209895494045, 0.0717433375794762],
            [0.1814061898390306, 0.0662037487758309],
            [-421.468889345013, -417.707270600915],
        ),
        (
            "breslow",
            [0.242839810756557, 0.147543530813586],
            [0.1861497348175240, 0.0713787049556632],
            [0.1659370412227548, 0.0594519165156362],
            [-433.079522316108, -429.971130843473],
        ),
    ],
)
def test_strata_as_r(
    cases: pd.DataFrame,
    ties: str,
    coef: list[float],
    se: list[float],
    robust: list[float],
    loglik: list[float],
) -> None:
    fit = stats.cox(cases, "time", "event", ["arm", "age"], strata="site", ties=ties)
    np.testing.assert_allclose(fit.coef, coef, rtol=1e-9)
    np.testing.assert_allclose(fit.naive_se, se, rtol=1e-9)
    np.testing.assert_allclose([fit.loglik_null, fit.loglik], loglik, rtol=1e-10)
    assert fit.iterations == 3 and fit.strata == "site"
    assert "stratified by 'site'" in str(fit)
    clustered = stats.cox(
        cases, "time", "event", ["arm", "age"], strata="site", cluster="family", ties=ties
    )
    np.testing.assert_allclose(clustered.naive_se, se, rtol=1e-9)
    np.testing.assert_allclose(clustered.summary["se"], robust, rtol=1e-9)
    # rows in any order; a stratum without events adds nothing
    extra = pd.DataFrame(
        {"time": [5.0, 9.0], "event": [0, 0], "arm": ["NIM", "SAU"], "age": [3.0, 4.0],
         "site": "Leeds", "family": [901, 902]}
    )  # fmt: skip
    shuffled = pd.concat([cases, extra]).sample(frac=1.0, random_state=3)
    again = stats.cox(shuffled, "time", "event", ["arm", "age"], strata="site", ties=ties)
    np.testing.assert_allclose(again.coef, coef, rtol=1e-9)
    with pytest.raises(StatsInputError, match="both a covariate and the strata"):
        stats.cox(cases, "time", "event", ["arm", "site"], strata="site")
