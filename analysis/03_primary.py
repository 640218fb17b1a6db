"""Primary outcome: SDQ total difficulties at 30 months by arm (ITT).

Primary analysis: ANCOVA adjusted for the baseline SDQ total and site, with cluster-robust
standard errors by family (``stats.compare_arms(..., method="ancova", cluster="family_id")``).
Sensitivity: the linear mixed model with a random intercept per family (REML) and the GEE
(exchangeable).  Subgroup: the arm effect by sex with the interaction test.  Complete cases
(children with the 30-month outcome and the baseline); multiple imputation is in
07_sensitivity.py.
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
    rows = []
    for label, method, cluster in (
        ("primary: ANCOVA, robust SE by family", "ancova", "family_id"),
        ("sensitivity: mixed model, random intercept per family", "mixed", "family_id"),
        ("sensitivity: GEE, exchangeable by family", "gee", "family_id"),
        ("sensitivity: ANCOVA, model-based SE", "ancova", None),
    ):
        try:
            result = stats.compare_arms(
                data, **model, covariates=["site"], cluster=cluster, method=method
            )
            rows.append(comparison_row(label, result))
        except stats.StatsInputError as exc:
            rows.append(not_estimable(label, exc))
    run.table(
        "primary",
        pd.DataFrame(rows),
        "Adjusted mean difference in SDQ total difficulties at 30 months",
        [
            "Adjusted for baseline SDQ total difficulties and site; estimate = comparison minus "
            "reference arm (negative = fewer difficulties); 95% CI.",
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
        effects["interaction_p"] = inter.pvalue
        notes = [
            f"Interaction arm x sex: Wald test on {inter.df_test} df, p = {inter.pvalue:.3f}.",
            "ANCOVA with robust SE by family, adjusted for baseline and site.",
        ]
    except stats.StatsInputError as exc:
        effects = pd.DataFrame([{"sex": "", "estimate": float("nan")}])
        notes = [f"Not estimable: {exc}"]
    run.table("primary_by_sex", effects, "Arm effect by sex (subgroup analysis)", notes)


if __name__ == "__main__":
    main(body, "03_primary.py", __doc__)
