"""Sensitivity analyses of the primary outcome: missing data and the per-protocol set.

1. Multiple imputation of the missing 30-month SDQ total difficulties (chained equations,
   predictive mean matching within arm, baseline SDQ and site as predictors; m = 20,
   seeded with ``--seed``), each completed data set analysed by the primary ANCOVA (robust
   SE by family), pooled with Rubin's rules (Barnard-Rubin df), beside the complete-case
   analysis of the same model.  Only children whose 30-month outcome window has closed (or
   whose outcome is observed) are imputed: a child whose 30-month visit is not yet due is
   "not yet reached", neither imputed nor counted missing (``noim.extract.followup``).
2. The primary ANCOVA (baseline, site; robust SE by family) in the per-protocol set.
"""

from __future__ import annotations

import pandas as pd
from _common import (
    PRIMARY,
    PRIMARY_BASELINE,
    PRIMARY_DUE,
    Run,
    comparison_row,
    main,
    not_estimable,
    outcome_data,
)

from noim import stats
from noim.reports import summaries

M = 20


def body(run: Run) -> None:
    data = outcome_data(run)
    by_arm = run.two_arms(data)
    missing = summaries.status_counts(data, "arm" if by_arm else None)
    run.table(
        "missing",
        missing,
        "Missing primary outcome data (ITT set)",
        [
            f"On {run.as_of.isoformat()}: missing = no score and the visit is due (its window "
            "has closed, or it was completed); not yet reached = no score and the visit is "
            "not yet due: neither missing nor imputed."
        ],
    )
    if not by_arm:
        return
    waiting = int((~data[PRIMARY_DUE]).sum())
    rows = []
    try:
        mi = stats.mi_compare_arms(
            data,
            PRIMARY,
            "arm",
            baseline=PRIMARY_BASELINE,
            covariates=["site"],
            m=M,
            rng=run.seed,
            cluster="family_id",
            due=PRIMARY_DUE,
        )
        ref, comparison = mi.levels
        for label, est, se, (lo, hi), p, n, extra in (
            (
                f"multiple imputation (m = {M})",
                mi.estimate,
                mi.se,
                mi.ci,
                mi.pvalue,
                mi.n,
                f"df = {mi.df:.1f}, fmi = {mi.fmi:.2f}",
            ),
            (
                "complete case",
                mi.complete_case.estimate,
                mi.complete_case.se,
                mi.complete_case.ci,
                mi.complete_case.pvalue,
                mi.complete_case.n,
                "",
            ),
        ):
            rows.append(
                {
                    "analysis": label,
                    "comparison": f"{comparison} - {ref}",
                    "n": n,
                    "estimate": est,
                    "lower": lo,
                    "upper": hi,
                    "se": se,
                    "p": p,
                    "note": extra,
                }
            )
    except stats.StatsInputError as exc:
        rows.append({"analysis": "multiple imputation", "note": f"not estimable: {exc}"})
    run.table(
        "multiple_imputation",
        pd.DataFrame(rows).reindex(
            columns=["analysis", "comparison", "n", "estimate", "lower", "upper", "se", "p", "note"]
        ),
        "SDQ total difficulties at 30 months: multiple imputation vs complete case",
        [
            f"Imputation within arm by predictive mean matching; seed {run.seed}. The primary "
            "ANCOVA (arm, baseline, site; robust SE by family) in each completed data set; "
            "Rubin's rules with G - 1 complete-data df.",
            f"{waiting} ITT child(ren) whose 30-month visit is not yet due are not yet reached: "
            "not imputed and not in n.",
            run.direction(),
            "Complete case: children with the outcome and a baseline. "
            + summaries.numbers_note(
                run.randomised(),
                summaries.arm_counts(data, data[PRIMARY].notna()),
                summaries.arm_counts(data, data[[PRIMARY, PRIMARY_BASELINE]].notna().all(axis=1)),
                list(reversed(run.arms(data))),
                "the 30-month SDQ",
            ),
        ],
    )
    model = {"outcome": PRIMARY, "arm": "arm", "baseline": PRIMARY_BASELINE, "covariates": ["site"]}
    sets = []
    randomised = run.randomised()
    for label, frame in (("ITT (primary)", data), ("per-protocol", data[data["per_protocol"]])):
        try:
            result = stats.compare_arms(frame, **model, cluster="family_id", method="ancova")
            sets.append(comparison_row(label, result, randomised))
        except stats.StatsInputError as exc:
            sets.append(not_estimable(label, exc))
    run.table(
        "per_protocol",
        pd.DataFrame(sets),
        "Primary ANCOVA in the ITT and per-protocol sets",
        [
            "Per-protocol: ITT, not excluded after randomisation, no major deviation, not "
            "withdrawn from the intervention.",
            run.direction(),
            "Children without a baseline SDQ are kept (missing-indicator method, as the "
            "primary analysis). Per arm: n_randomised, n_outcome (with the 30-month SDQ, in "
            "the set), n_analysed.",
        ],
    )


if __name__ == "__main__":
    main(body, "07_sensitivity.py", __doc__)
