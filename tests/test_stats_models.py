"""Outcome comparisons by arm against R (lm, sandwich, lme4, geepack) and statsmodels.

Reference data: ../shared/reference/anorexia.csv (MASS::anorexia) and two deterministic
data sets in tests/data/, generated once with numpy (seed given) by::

    def make(seed, n_fam, tau, sigma, anti=0.0):
        rng = np.random.default_rng(seed)
        sizes = rng.choice([1, 1, 1, 2, 2, 3, 4], size=n_fam)
        fam = np.repeat(np.arange(1, n_fam + 1), sizes)
        arm_f = rng.permutation(np.arange(n_fam) % 2)
        site_f = rng.choice(["CRO", "GLA", "LDN"], size=n_fam)
        u = rng.normal(0, tau, n_fam)
        n = len(fam); i = fam - 1
        within = np.concatenate([np.arange(k) for k in sizes])
        sex = rng.choice(["F", "M"], size=n)
        base = np.round(rng.normal(20, 5, n), 2)
        y = (5 + 2 * arm_f[i] + 0.5 * base + 1.0 * (sex == "M") + 1.5 * (site_f[i] == "GLA")
             - 1.0 * (site_f[i] == "LDN") + u[i] + rng.normal(0, sigma, n)
             + anti * np.where(within % 2 == 0, 1, -1) * rng.normal(0, 1, n_fam)[i])
        # columns family ("F001"...), arm ("NIM"/"SAU"), sex, site, base, y (rounded to 3 dp)

    models_clustered.csv = make(20261124, 160, 3.0, 4.0)   # 319 children, 160 families, 70 singletons
    models_boundary.csv  = make(1, 40, 0.0, 2.0, anti=2.0) # REML between-family variance 0

R 4.x calls (lme4, geepack, sandwich, lmtest), with ``d <- read.csv("models_clustered.csv")``
and ``b <- read.csv("models_boundary.csv")``; figures pasted below at 15 digits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from noim import stats
from noim.stats import StatsInputError

DATA = Path(__file__).parent / "data"
ANOREXIA = DATA / "anorexia.csv"  # a copy of ../shared/reference/anorexia.csv (MASS::anorexia)
TERMS = ["Intercept", "arm[T.SAU]", "base", "sex[T.M]", "site[T.GLA]", "site[T.LDN]"]


def rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


@pytest.fixture
def anorexia() -> pd.DataFrame:
    d = pd.read_csv(ANOREXIA)
    return d[d["Treat"] != "FT"].reset_index(drop=True)


@pytest.fixture
def clustered() -> pd.DataFrame:
    return pd.read_csv(DATA / "models_clustered.csv")


@pytest.fixture
def boundary() -> pd.DataFrame:
    return pd.read_csv(DATA / "models_boundary.csv")


def assert_close(actual: pd.Series, expected: list[float], tol: float) -> None:
    for name, a, e in zip(actual.index, actual.to_numpy(), expected, strict=True):
        assert rel(a, e) < tol, (name, a, e)


# --- ANCOVA ---------------------------------------------------------------------------------


def test_anorexia_ancova_equals_published_lm(anorexia: pd.DataFrame) -> None:
    # lm(Postwt ~ Prewt + Treat, subset(anorexia, Treat != "FT"))  (reference README)
    r = stats.compare_arms(anorexia, "Postwt", "Treat", baseline="Prewt")
    assert r.reference == "CBT" and r.comparison == "Cont"
    assert rel(r.estimate, -4.2441122655) < 1e-8
    assert rel(r.se, 1.8377959310) < 1e-8
    assert rel(r.pvalue, 0.0249291760) < 1e-8
    prewt = r.summary.loc["Prewt"]
    assert rel(prewt["estimate"], 0.3045569441) < 1e-8
    assert rel(prewt["se"], 0.1763273976) < 1e-8
    assert rel(prewt["p"], 0.0900636120) < 1e-8
    assert r.n == {"CBT": 29, "Cont": 26}
    assert r.df == 52
    # confint(fit)["TreatCont", ]
    assert rel(r.ci[0], -7.9319195987418105) < 1e-8
    assert rel(r.ci[1], -0.556304932208297) < 1e-8
    assert list(r.summary.columns) == ["estimate", "se", "lower", "upper", "statistic", "p"]
    assert list(r.summary.index) == ["Intercept", "Treat[T.Cont]", "Prewt"]


def test_reference_flips_the_difference(anorexia: pd.DataFrame) -> None:
    a = stats.compare_arms(anorexia, "Postwt", "Treat", baseline="Prewt")
    b = stats.compare_arms(
        anorexia, "Postwt", "Treat", baseline="Prewt", reference={"Treat": "Cont"}
    )
    assert b.comparison == "CBT"
    assert b.estimate == pytest.approx(-a.estimate, rel=1e-12)
    assert b.se == pytest.approx(a.se, rel=1e-12)
    assert "Treat[T.CBT]" in b.summary.index
    assert list(b.n) == ["Cont", "CBT"]


def test_effect_size_is_estimate_over_pooled_raw_sd(anorexia: pd.DataFrame) -> None:
    r = stats.compare_arms(anorexia, "Postwt", "Treat", baseline="Prewt")
    groups = anorexia.groupby("Treat")["Postwt"]
    pooled = np.sqrt(((groups.count() - 1) * groups.var()).sum() / (len(anorexia) - 2))
    assert r.pooled_sd == pytest.approx(pooled, rel=1e-12)
    assert r.effect_size == pytest.approx(r.estimate / pooled, rel=1e-12)
    text = str(r)
    assert "Cont - CBT: -4.24411" in text and "n analysed = 55 (CBT: 29, Cont: 26)" in text
    assert "ANCOVA (OLS)" in text and "effect size" in text


def test_cluster_robust_ancova_equals_sandwich_vcovcl_hc1(clustered: pd.DataFrame) -> None:
    # l <- lm(y ~ arm + base + sex + site, data = d)
    # coeftest(l, vcov = vcovCL(l, cluster = ~family, type = "HC1"),
    #          df = length(unique(d$family)) - 1)
    r = stats.compare_arms(clustered, "y", "arm", "base", ["sex", "site"], cluster="family")
    s = r.summary.loc[TERMS]
    assert_close(
        s["estimate"],
        [5.312734366940254, -1.642428636619231, 0.566053487462884, 0.876466237816103,
         0.913300106385288, -0.952825358728314],
        1e-10,
    )  # fmt: skip
    assert_close(
        s["se"],
        [1.2976169796274537, 0.7487998635613485, 0.0530432037605054, 0.5244784614066804,
         0.9666035189835193, 0.8910104335795287],
        1e-10,
    )  # fmt: skip
    assert_close(
        s["p"],
        [6.72383647505937e-05, 2.97293914796190e-02, 2.17613212644703e-20, 9.66651423892680e-02,
         3.46166533605284e-01, 2.86520934690247e-01],
        1e-8,
    )  # fmt: skip
    assert r.df == 159 and r.extra["n_clusters"] == 160
    assert "cluster-robust" in r.method


# --- random intercept (REML) ----------------------------------------------------------------


def test_mixed_equals_lme4(clustered: pd.DataFrame) -> None:
    # m <- lmer(y ~ arm + base + sex + site + (1 | family), data = d, REML = TRUE)
    # fixef(m); sqrt(diag(vcov(m))); as.data.frame(VarCorr(m)); REMLcrit(m)
    r = stats.compare_arms(clustered, "y", "arm", "base", ["sex", "site"], "family", "mixed")
    s = r.summary.loc[TERMS]
    assert_close(
        s["estimate"],
        [6.264276493388124, -1.272899367453225, 0.537855294495849, 0.202146619314640,
         0.705934292714007, -1.203884593756485],
        1e-6,
    )  # fmt: skip
    assert_close(
        s["se"],
        [1.2193354252701389, 0.7386751949427200, 0.0456222821918791, 0.4982639190097555,
         0.9138637809807572, 0.9267002504701857],
        1e-6,
    )  # fmt: skip
    assert rel(r.extra["tau2"], 13.6792709707003) < 1e-6
    assert rel(r.extra["sigma2"], 13.4337194318081) < 1e-6
    assert rel(r.extra["reml_criterion"], 1895.31920566259) < 1e-10
    assert r.estimate == s.loc["arm[T.SAU]", "estimate"]
    assert r.df is None  # normal reference distribution (lme4 prints no p-value)
    assert r.n == {"NIM": 156, "SAU": 163}


def test_mixed_on_the_boundary_equals_lme4_singular_fit(boundary: pd.DataFrame) -> None:
    # mb <- lmer(y ~ arm + base + sex + (1 | family), data = b, REML = TRUE)
    # boundary (singular) fit; VarCorr: family 0, Residual 7.39593915738296
    r = stats.compare_arms(boundary, "y", "arm", "base", ["sex"], "family", "mixed")
    s = r.summary
    assert_close(
        s["estimate"],
        [8.067313381848921, -2.088257291391313, 0.429023336147476, 0.673293472324194],
        1e-8,
    )
    assert_close(
        s["se"], [1.356246769107685, 0.634533927038128, 0.062663361669379, 0.616203801446487], 1e-8
    )
    assert r.extra["tau2"] == 0.0
    assert rel(r.extra["sigma2"], 7.39593915738296) < 1e-8
    assert rel(r.extra["reml_criterion"], 385.588536139767) < 1e-10


def test_mixed_agrees_with_statsmodels_mixedlm(clustered: pd.DataFrame) -> None:
    import statsmodels.formula.api as smf

    m = smf.mixedlm("y ~ arm + base + sex + site", clustered, groups=clustered["family"]).fit(
        reml=True
    )
    r = stats.compare_arms(clustered, "y", "arm", "base", ["sex", "site"], "family", "mixed")
    for term in TERMS:
        assert rel(r.summary.loc[term, "estimate"], m.fe_params[term]) < 1e-4, term
    assert rel(r.extra["tau2"], float(m.cov_re.iloc[0, 0])) < 1e-4
    assert rel(r.extra["sigma2"], float(m.scale)) < 1e-4


# --- GEE --------------------------------------------------------------------------------------


def test_gee_equals_geepack(clustered: pd.DataFrame) -> None:
    # g2 <- geeglm(y ~ arm + base + sex + site, id = factor(family), data = d,
    #              corstr = "exchangeable", control = geese.control(epsilon = 1e-12, maxit = 100))
    # coef(g2); summary(g2)$coefficients[, 2]; summary(g2)$corr; summary(g2)$dispersion
    r = stats.compare_arms(clustered, "y", "arm", "base", ["sex", "site"], "family", "gee")
    s = r.summary.loc[TERMS]
    geepack_tight = [6.086427069832806, -1.306413933037419, 0.543433827415291, 0.292027620282164,
                     0.739097777999524, -1.167612534029107]  # fmt: skip
    assert_close(s["estimate"], geepack_tight, 1e-9)
    assert_close(
        s["se"],
        [1.2279112267723766, 0.7323883033673931, 0.0473506119213193, 0.4910414031367876,
         0.9343304451330550, 0.8924079127156587],
        1e-9,
    )  # fmt: skip
    assert rel(r.extra["alpha"], 0.427790392602962) < 1e-9
    assert rel(r.extra["scale"], 25.8466297404501) < 1e-9
    # geeglm(...) with geepack's default control (epsilon = 1e-4) stops a little earlier:
    # coef 6.086425754788090 -1.306414204378772 ...; Wald chi-square of armSAU 3.181844856761751
    assert rel(r.estimate, -1.306414204378772) < 1e-5
    assert rel(r.summary.loc["arm[T.SAU]", "statistic"] ** 2, 3.181844856761751) < 1e-5
    assert r.df is None


# --- interaction ------------------------------------------------------------------------------


def test_interaction_equals_lm_and_anova(clustered: pd.DataFrame) -> None:
    # li <- lm(y ~ arm * sex + base, data = d); summary(li)$coefficients
    # a <- anova(lm(y ~ arm + sex + base, data = d), li); a$F[2]; a[["Pr(>F)"]][2]
    # L <- c(0, 1, 0, 0, 1); sum(L * coef(li)); sqrt(t(L) %*% vcov(li) %*% L)
    r = stats.interaction(clustered, "y", "arm", "sex", baseline="base")
    term = "arm[T.SAU]:sex[T.M]"
    assert r.interaction_terms == [term]
    assert rel(r.summary.loc[term, "estimate"], -1.735478874697968) < 1e-10
    assert rel(r.summary.loc[term, "se"], 1.1569938042398502) < 1e-10
    assert rel(r.statistic, 2.24996932147411) < 1e-10
    assert rel(r.pvalue, 0.13462182308654) < 1e-10
    assert (r.test, r.df_test, r.df_denom) == ("F", 1, 314)
    assert rel(r.effects.loc["F", "estimate"], -0.770298745595701) < 1e-10
    assert rel(r.effects.loc["F", "se"], 0.8363776429001393) < 1e-10
    assert rel(r.effects.loc["M", "estimate"], -2.50577762029367) < 1e-10
    assert rel(r.effects.loc["M", "se"], 0.798812086684855) < 1e-10
    assert r.effects["n"].sum() == len(clustered)
    assert "interaction test: F(1, 314) = 2.24997" in str(r)


def test_interaction_mixed_wald_equals_lme4(clustered: pd.DataFrame) -> None:
    # mi <- lmer(y ~ arm * sex + base + (1 | family), data = d, REML = TRUE)
    # b <- fixef(mi)["armSAU:sexM"]; b^2 / vcov(mi)["armSAU:sexM", "armSAU:sexM"]
    r = stats.interaction(clustered, "y", "arm", "sex", "base", cluster="family", method="mixed")
    assert rel(r.summary.loc["arm[T.SAU]:sex[T.M]", "estimate"], -2.31380759797963) < 1e-6
    assert rel(r.statistic, 5.53395613880044) < 1e-6
    assert r.test == "chi2" and r.df_test == 1 and r.df_denom is None


def test_interaction_with_three_level_subgroup(clustered: pd.DataFrame) -> None:
    r = stats.interaction(clustered, "y", "arm", "site", "base", reference={"site": "GLA"})
    assert list(r.effects.index) == ["GLA", "CRO", "LDN"]
    assert r.df_test == 2 and r.test == "F"
    # in the reference subgroup the arm effect is the arm coefficient itself
    assert r.effects.loc["GLA", "estimate"] == r.summary.loc["arm[T.SAU]", "estimate"]


# --- design: categorical covariates, references, missing values -------------------------------


def test_categorical_covariate_reference(clustered: pd.DataFrame) -> None:
    a = stats.compare_arms(clustered, "y", "arm", "base", ["sex", "site"])
    b = stats.compare_arms(
        clustered, "y", "arm", "base", ["sex", "site"], reference={"site": "GLA"}
    )
    assert "site[T.GLA]" in a.summary.index and "site[T.CRO]" in b.summary.index
    assert "site[T.GLA]" not in b.summary.index
    assert b.estimate == pytest.approx(a.estimate, rel=1e-10)
    assert b.summary.loc["site[T.CRO]", "estimate"] == pytest.approx(
        -a.summary.loc["site[T.GLA]", "estimate"], rel=1e-10
    )
    with pytest.raises(StatsInputError, match="reference names 'region'"):
        stats.compare_arms(clustered, "y", "arm", reference={"region": "x"})
    with pytest.raises(StatsInputError, match="'WAL' is not a level of 'site'"):
        stats.compare_arms(clustered, "y", "arm", covariates=["site"], reference={"site": "WAL"})
    with pytest.raises(StatsInputError, match="expected a mapping from a column to its reference"):
        stats.compare_arms(clustered, "y", "arm", reference="SAU")  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["ancova", "mixed", "gee"])
def test_missing_values_are_dropped_and_reported(clustered: pd.DataFrame, method: str) -> None:
    holes = clustered.copy()
    holes.loc[[3, 10, 11], "y"] = np.nan
    holes.loc[[10, 20], "site"] = None
    r = stats.compare_arms(holes, "y", "arm", "base", ["sex", "site"], "family", method)
    cc = stats.compare_arms(holes.dropna(), "y", "arm", "base", ["sex", "site"], "family", method)
    assert r.n_dropped == 4
    assert r.dropped_by_column == {"y": 3, "site": 2}
    assert sum(r.n.values()) == len(clustered) - 4
    assert r.estimate == pytest.approx(cc.estimate, rel=1e-12)
    assert "4 row(s) with missing values dropped (complete cases): y 3, site 2" in str(r)


# --- a partly missing baseline (White & Thompson 2005) -------------------------------------------
#
# R 4.x, d <- read.csv("models_clustered.csv") with 80 of its 319 baselines removed:
#   d$base[seq(2, nrow(d), by = 4)] <- NA
#   d$arm <- relevel(factor(d$arm), ref = "SAU")
#   d$base_missing <- as.numeric(is.na(d$base))
#   d$bf <- ifelse(is.na(d$base), mean(d$base, na.rm = TRUE), d$base)   # mean 20.1766945606695
#   fi <- lm(y ~ arm + bf + base_missing + sex + site, data = d)          # "indicator"
#   coeftest(fi, vcov = vcovCL(fi, cluster = ~family, type = "HC1"), df = G - 1)
#   lm(y ~ arm + ifelse(is.na(base), 0, base) + is.na(base) + sex + site)  # same arm effect
#   fm <- lm(y ~ arm + bf + sex + site, data = d)                         # "mean"
#   fd <- lm(y ~ arm + base + sex + site, data = d)                       # "drop" (239 rows)
#   a0 <- lm(y ~ arm + sex + bf + base_missing); a1 <- lm(y ~ arm * sex + bf + base_missing)
#   anova(a0, a1); L'b and sqrt(L' vcov(a1) L) for armNIM + armNIM:sexM


@pytest.fixture
def no_baseline(clustered: pd.DataFrame) -> pd.DataFrame:
    holes = clustered.copy()
    holes.loc[holes.index % 4 == 1, "base"] = np.nan  # R rows 2, 6, 10, ...
    return holes


def test_missing_baseline_indicator_equals_lm_with_the_indicator_term(
    no_baseline: pd.DataFrame,
) -> None:
    r = stats.compare_arms(
        no_baseline, "y", "arm", "base", ["sex", "site"], reference={"arm": "SAU"}
    )  # baseline_missing="indicator" is the default
    assert r.baseline_missing == "indicator" and r.contrast == "NIM - SAU"
    assert r.n == {"SAU": 163, "NIM": 156} and r.n_dropped == 0
    assert r.n_outcome == r.n and sum(r.n_baseline_missing.values()) == 80
    table = r.summary
    assert list(table.index) == [
        "Intercept", "arm[T.NIM]", "base", "base_missing", "sex[T.M]", "site[T.GLA]", "site[T.LDN]"
    ]  # fmt: skip
    assert_close(
        table["estimate"],
        [4.747039827445556, 1.586743603413990, 0.532853276559261, -0.865690120406834,
         0.864541913398069, 0.598759833172224, -1.127242281762995],
        1e-10,
    )  # fmt: skip
    assert_close(
        table["se"],
        [1.5130747302794123, 0.6102047021500439, 0.0656185546395214, 0.7022108728697647,
         0.6127338549489371, 0.7680845485911788, 0.7729573336666911],
        1e-10,
    )  # fmt: skip
    assert rel(r.pvalue, 9.75620113560350e-03) < 1e-8
    robust = stats.compare_arms(
        no_baseline, "y", "arm", "base", ["sex", "site"], "family", reference={"arm": "SAU"}
    )
    assert rel(robust.estimate, 1.5867436034139897) < 1e-10
    assert rel(robust.se, 0.7728508508447729) < 1e-10
    assert rel(robust.pvalue, 0.0417010159028554) < 1e-8
    text = str(robust)
    assert "80 row(s) without a baseline" in text and "missing-indicator term" in text
    assert "NIM - SAU: 1.58674" in text


def test_missing_baseline_mean_and_drop_equal_lm(no_baseline: pd.DataFrame) -> None:
    mean = stats.compare_arms(
        no_baseline,
        "y",
        "arm",
        "base",
        ["sex", "site"],
        reference={"arm": "SAU"},
        baseline_missing="mean",
    )
    assert "base_missing" not in mean.summary.index and sum(mean.n.values()) == 319
    assert rel(mean.estimate, 1.546450579949336) < 1e-10
    assert rel(mean.se, 0.6098345171349435) < 1e-10
    assert rel(mean.summary.loc["base", "estimate"], 0.532519817509531) < 1e-10
    drop = stats.compare_arms(
        no_baseline,
        "y",
        "arm",
        "base",
        ["sex", "site"],
        reference={"arm": "SAU"},
        baseline_missing="drop",
    )
    assert sum(drop.n.values()) == 239 and drop.dropped_by_column == {"base": 80}
    assert drop.n_outcome == {"SAU": 163, "NIM": 156}  # with the outcome, not all analysed
    assert sum(drop.n_baseline_missing.values()) == 0
    assert rel(drop.estimate, 1.608404710143930) < 1e-10
    assert rel(drop.se, 0.652009969416583) < 1e-10


def test_missing_baseline_in_interaction_equals_anova_of_lm(no_baseline: pd.DataFrame) -> None:
    r = stats.interaction(no_baseline, "y", "arm", "sex", "base", reference={"arm": "SAU"})
    assert sum(r.n.values()) == 319 and sum(r.n_baseline_missing.values()) == 80
    assert r.contrast == "NIM - SAU"
    assert rel(r.statistic, 3.66709255003016) < 1e-9
    assert rel(r.pvalue, 0.0564081700719577) < 1e-8
    assert rel(r.effects.loc["M", "estimate"], 2.74700160477298) < 1e-10
    assert rel(r.effects.loc["M", "se"], 0.84141771057610) < 1e-10


@pytest.mark.parametrize("method", ["mixed", "gee"])
def test_missing_baseline_is_kept_by_every_method(no_baseline: pd.DataFrame, method: str) -> None:
    r = stats.compare_arms(no_baseline, "y", "arm", "base", ["sex"], "family", method)
    assert sum(r.n.values()) == 319 and "base_missing" in r.summary.index
    complete = no_baseline.dropna()
    cc = stats.compare_arms(complete, "y", "arm", "base", ["sex"], "family", method)
    assert sum(cc.n.values()) == 239 and "base_missing" not in cc.summary.index


def test_missing_baseline_refusals(no_baseline: pd.DataFrame) -> None:
    with pytest.raises(StatsInputError, match="baseline_missing='impute'; expected one of"):
        stats.compare_arms(no_baseline, "y", "arm", "base", baseline_missing="impute")
    none = no_baseline.assign(base=np.nan)
    with pytest.raises(StatsInputError, match="baseline 'base' is missing in every one of the 319"):
        stats.compare_arms(none, "y", "arm", "base")
    # no baseline missing: the indicator method is the complete-case analysis
    full = stats.compare_arms(no_baseline.dropna(), "y", "arm", "base")
    dropped = stats.compare_arms(no_baseline, "y", "arm", "base", baseline_missing="drop")
    assert full.estimate == pytest.approx(dropped.estimate, rel=1e-12)
    assert "base_missing" not in full.summary.index


def test_a_categorical_arm_gives_the_reference_as_its_first_category(
    clustered: pd.DataFrame,
) -> None:
    # noim's analysis data list the control arm first, so the default is NIM - SAU
    ordered = clustered.assign(arm=pd.Categorical(clustered["arm"], categories=["SAU", "NIM"]))
    r = stats.compare_arms(ordered, "y", "arm", "base")
    explicit = stats.compare_arms(clustered, "y", "arm", "base", reference={"arm": "SAU"})
    assert r.contrast == "NIM - SAU" and list(r.n) == ["SAU", "NIM"]
    assert r.estimate == pytest.approx(explicit.estimate, rel=1e-12)
    assert stats.compare_arms(clustered, "y", "arm", "base").contrast == "SAU - NIM"  # sorted


# --- edge cases -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["ancova", "mixed", "gee"])
def test_single_cluster_is_refused(clustered: pd.DataFrame, method: str) -> None:
    one = clustered.assign(family="F001")
    with pytest.raises(
        StatsInputError, match="expected at least 2 clusters in each level of 'arm'"
    ):
        stats.compare_arms(one, "y", "arm", "base", cluster="family", method=method)


def test_all_singleton_clusters(clustered: pd.DataFrame) -> None:
    singletons = clustered.assign(family=np.arange(len(clustered)))
    with pytest.raises(StatsInputError, match="every one of the 319 clusters has a single row"):
        stats.compare_arms(singletons, "y", "arm", "base", cluster="family", method="mixed")
    # GEE with singleton clusters: no pairs, working correlation 0, OLS with the sandwich SE
    g = stats.compare_arms(singletons, "y", "arm", "base", cluster="family", method="gee")
    ols = stats.compare_arms(singletons, "y", "arm", "base")
    assert g.extra["alpha"] == 0.0
    assert g.estimate == pytest.approx(ols.estimate, rel=1e-12)


def test_clustered_methods_need_a_cluster(clustered: pd.DataFrame) -> None:
    with pytest.raises(StatsInputError, match="method 'mixed' needs cluster="):
        stats.compare_arms(clustered, "y", "arm", method="mixed")
    with pytest.raises(StatsInputError, match="method 'lmm' is not known"):
        stats.compare_arms(clustered, "y", "arm", cluster="family", method="lmm")


def test_arm_levels(clustered: pd.DataFrame, anorexia: pd.DataFrame) -> None:
    with pytest.raises(
        StatsInputError, match="has 1 level\\(s\\) \\('SAU'\\); expected at least 2"
    ):
        stats.compare_arms(clustered[clustered["arm"] == "SAU"], "y", "arm")
    three = pd.read_csv(ANOREXIA)
    with pytest.raises(StatsInputError, match=r"has 3 levels .*expected exactly two"):
        stats.compare_arms(three, "Postwt", "Treat")


def test_constant_outcome_and_one_level_covariate(clustered: pd.DataFrame) -> None:
    with pytest.raises(StatsInputError, match="outcome 'y' is constant"):
        stats.compare_arms(clustered.assign(y=3.0), "y", "arm")
    with pytest.raises(StatsInputError, match="'site' has one level \\('GLA'\\)"):
        stats.compare_arms(clustered.assign(site="GLA"), "y", "arm", covariates=["site"])
    with pytest.raises(StatsInputError, match="'base2' is a linear combination"):
        stats.compare_arms(
            clustered.assign(base2=2 * clustered["base"]), "y", "arm", "base", ["base2"]
        )


def test_bad_inputs_name_the_column(clustered: pd.DataFrame) -> None:
    with pytest.raises(StatsInputError, match="no column\\(s\\) 'outcome'"):
        stats.compare_arms(clustered, "outcome", "arm")
    with pytest.raises(StatsInputError, match="column 'base' is given in two roles"):
        stats.compare_arms(clustered, "y", "arm", "base", ["base"])
    with pytest.raises(StatsInputError, match="column 'y' holds 'high'"):
        stats.compare_arms(clustered.assign(y=clustered["y"].astype(object).where(
            clustered.index != 5, "high")), "y", "arm")  # fmt: skip
    with pytest.raises(StatsInputError, match="no complete rows"):
        stats.compare_arms(clustered.assign(y=np.nan), "y", "arm")


@pytest.mark.parametrize("method", ["ancova", "mixed", "gee"])
def test_row_order_does_not_matter(clustered: pd.DataFrame, method: str) -> None:
    # clusters are the distinct values of the column, not runs of sorted rows
    shuffled = clustered.sample(frac=1.0, random_state=np.random.default_rng(5))
    a = stats.compare_arms(clustered, "y", "arm", "base", ["sex", "site"], "family", method)
    b = stats.compare_arms(shuffled, "y", "arm", "base", ["sex", "site"], "family", method)
    np.testing.assert_allclose(b.summary.to_numpy(), a.summary.to_numpy(), rtol=1e-9)


@pytest.mark.parametrize("method", ["ancova", "mixed", "gee"])
def test_outcome_fitted_exactly_is_refused(clustered: pd.DataFrame, method: str) -> None:
    exact = clustered.assign(y=np.where(clustered["arm"] == "NIM", 1.0, 2.0))
    with pytest.raises(StatsInputError, match="fitted exactly"):
        stats.compare_arms(exact, "y", "arm", cluster="family", method=method)


def test_mixed_without_within_cluster_variation_is_refused(clustered: pd.DataFrame) -> None:
    codes = clustered["family"].str[1:].astype(int)
    flat = clustered.assign(y=np.sin(codes) * 5 + (clustered["arm"] == "SAU"))
    with pytest.raises(StatsInputError, match="runs to infinity"):
        stats.compare_arms(flat, "y", "arm", cluster="family", method="mixed")
