"""Primary outcome: SDQ total difficulties at 30 months by arm (ITT).

Primary analysis: ANCOVA adjusted for the baseline SDQ total and site, with cluster-robust
standard errors by family (``stats.compare_arms(..., method="ancova", cluster="family_id")``).
Sensitivity: the linear mixed model with a random intercept per family (REML), the GEE
(exchangeable), and the ANCOVA of the children with a baseline only.  Subgroup: the arm effect
by sex with the interaction test.  Every child with the 30-month outcome is analysed: a child
without a baseline SDQ (under two at baseline, or not assessed) keeps its place by the
missing-indicator method (White & Thompson 2005; ``baseline_missing="indicator"``, the
default).  Effects are intervention minus control (NIM - SAU).  Multiple imputation of the
missing outcomes is in 07_sensitivity.py.
"""

from __future__ import annotations

import pandas as pd
from _common import (
    PRIMARY,
    PRIMARY_BASELINE,
    Run,
    comparison_row,
    main,
    mean_sd_by,
    not_estimable,
    outcome_data,
)

from noim import stats
from noim.reports import summaries


def body(run: Run) -> None:
    data = outcome_data(run)
    by_arm = run.two_arms(data)
    run.table(
        "primary_descriptive",
        mean_sd_by(data, [PRIMARY_BASELINE, PRIMARY], "arm" if by_arm else None),
        "SDQ total difficulties at baseline and 30 months (observed)",
        ["ITT set; n = children with the score."],
    )
    if not by_arm:
        return
    model = {"outcome": PRIMARY, "arm": "arm", "baseline": PRIMARY_BASELINE}
    randomised = run.randomised()
    rows = []
    for label, method, cluster, missing in (
        ("primary: ANCOVA, robust SE by family", "ancova", "family_id", "indicator"),
        (
            "sensitivity: mixed model, random intercept per family",
            "mixed",
            "family_id",
            "indicator",
        ),
        ("sensitivity: GEE, exchangeable by family", "gee", "family_id", "indicator"),
        ("sensitivity: ANCOVA, model-based SE", "ancova", None, "indicator"),
        ("sensitivity: ANCOVA, children with a baseline only", "ancova", "family_id", "drop"),
    ):
        try:
            result = stats.compare_arms(
                data,
                **model,
                covariates=["site"],
                cluster=cluster,
                method=method,
                baseline_missing=missing,
            )
            rows.append(comparison_row(label, result, randomised))
        except stats.StatsInputError as exc:
            rows.append(not_estimable(label, exc))
    run.table(
        "primary",
        pd.DataFrame(rows),
        "Adjusted mean difference in SDQ total difficulties at 30 months",
        [
            run.direction() + " A negative estimate means fewer difficulties with the "
            "intervention.",
            "Adjusted for baseline SDQ total difficulties and site; 95% CI. Children without a "
            "baseline SDQ are analysed with their baseline set to the mean and a "
            "missing-indicator term (White & Thompson, Stat Med 2005;24:993-1007); "
            "n_baseline_missing counts them. The last row drops them (complete cases).",
            "Per arm: n_randomised (children randomised), n_outcome (with the 30-month SDQ), "
            "n_analysed (in the model).",
            "effect_size: estimate / pooled SD of the outcome.",
        ],
    )
    try:
        inter = stats.interaction(
            data, **model, by="sex", covariates=["site"], cluster="family_id", method="ancova"
        )
        effects = inter.effects.reset_index().rename(
            columns={inter.effects.index.name or "index": "sex"}
        )
        effects.insert(1, "comparison", inter.contrast)
        effects["interaction_p"] = inter.pvalue
        notes = [
            run.direction(),
            f"Interaction arm x sex: Wald test on {inter.df_test} df, p = {inter.pvalue:.3f}.",
            "ANCOVA with robust SE by family, adjusted for baseline (missing-indicator method) "
            "and site.",
            summaries.numbers_note(
                randomised, inter.n_outcome, inter.n, list(reversed(inter.n)), "the 30-month SDQ"
            ),
        ]
    except stats.StatsInputError as exc:
        effects = pd.DataFrame([{"sex": "", "estimate": float("nan")}])
        notes = [f"Not estimable: {exc}"]
    run.table("primary_by_sex", effects, "Arm effect by sex (subgroup analysis)", notes)


if __name__ == "__main__":
    main(body, "03_primary.py", __doc__)
