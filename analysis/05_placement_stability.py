"""Placement stability by arm (ITT): placement moves, two or more moves, re-entry to care.

Moves per child with days in care as exposure: rate ratio from Poisson and negative binomial
models (robust SE by family); the share of children with two or more moves (risk
difference, risk ratio, odds ratio; GEE by family); returns home and re-entries to care
after a return home.
"""

from __future__ import annotations

import pandas as pd
from _common import Run, main

from noim import stats
from noim.reports import summaries


def _effect_row(
    analysis: str, measure: str, effect: stats.binary.Effect, n_dropped: int
) -> dict[str, object]:
    return {
        "analysis": analysis,
        "measure": measure,
        "estimate": effect.estimate,
        "lower": effect.lower,
        "upper": effect.upper,
        "p": effect.pvalue,
        "method": effect.method,
        "n_dropped": n_dropped,  # rows with a missing value (noim.stats drops and counts them)
    }


def body(run: Run) -> None:
    data = run.itt(run.extract("placements"))
    by_arm = run.two_arms(data)
    keys = data["arm"] if by_arm else pd.Series("all", index=data.index)
    grouped = data.groupby(keys)
    described = pd.DataFrame(
        {
            "children": grouped.size(),
            "moves": grouped["moves"].sum(),
            "mean_moves": grouped["moves"].mean(),
            "two_or_more_moves": grouped["two_or_more_moves"].sum(),
            "years_in_care": grouped["days_in_care"].sum() / 365.25,
        }
    )
    described["moves_per_year"] = described["moves"] / described["years_in_care"]
    run.table(
        "moves",
        described.rename_axis("arm").reset_index(),
        "Placement moves by arm",
        ["Moves: every placement after the first, up to the end of follow-up."],
    )
    reentries = run.itt(run.extract("reentries"))
    keys_r = reentries["arm"] if by_arm else pd.Series("all", index=reentries.index)
    home = reentries.groupby(keys_r)
    run.table(
        "reentries",
        pd.DataFrame(
            {
                "children": home.size(),
                "returned_home": home["returned_home"].sum(),
                "reentered_care": home["reentered"].sum(),
            }
        )
        .rename_axis("arm")
        .reset_index(),
        "Returns home and re-entries to care by arm",
        ["Re-entry: a return to care ending a recorded return home, by the end of follow-up."],
    )
    if not by_arm:
        return

    rows = []
    randomised = run.randomised()
    levels = list(reversed(run.arms(data)))
    exposed = data[data["days_in_care"] > 0]
    if len(exposed) < len(data):
        run.note(
            f"{len(data) - len(exposed)} child(ren) with no days in care left out of the rate models."
        )
    for model in ("poisson", "negbin"):
        label = f"moves: {'Poisson' if model == 'poisson' else 'negative binomial'}"
        try:
            r = stats.rate_ratio(
                exposed, "moves", "arm", "days_in_care", model=model, cluster="family_id"
            )
            row = _effect_row(label, "rate ratio", r.rate_ratio, r.n_dropped)
            if r.theta is not None:
                row["method"] = f"{row['method']}; theta = {r.theta:.3g}"
            rows.append(row)
        except stats.StatsInputError as exc:
            rows.append(
                {"analysis": label, "measure": "rate ratio", "method": f"not estimable: {exc}"}
            )
    for frame, outcome, label in (
        (data, "two_or_more_moves", "two or more moves"),
        (reentries[reentries["returned_home"]], "reentered", "re-entry among those returned home"),
    ):
        try:
            b = stats.binary_by_arm(frame, outcome, "arm", cluster="family_id")
            for measure in ("risk_difference", "risk_ratio", "odds_ratio"):
                effect = getattr(b, measure)
                rows.append(_effect_row(label, measure.replace("_", " "), effect, b.n_dropped))
        except stats.StatsInputError as exc:
            rows.append({"analysis": label, "method": f"not estimable: {exc}"})
    comparison = " - ".join(str(a) for a in levels)
    returned = reentries[reentries["returned_home"]]
    every, home = summaries.arm_counts(data), summaries.arm_counts(returned)
    run.table(
        "stability_effects",
        pd.DataFrame(rows).reindex(
            columns=[
                "analysis",
                "measure",
                "estimate",
                "lower",
                "upper",
                "p",
                "method",
                "n_dropped",
            ]
        ),
        f"Placement stability: arm effects ({comparison}; ratios {comparison.replace('-', '/')})",
        [
            run.direction(),
            "Rate ratios: moves per day in care (exposure), robust SE by family.",
            "Binary outcomes: adjusted for clustering by family when the model converges, "
            "otherwise the unadjusted 2x2 estimate (the method column says which).",
            "Moves: "
            + summaries.numbers_note(
                randomised, every, summaries.arm_counts(exposed), levels, "placement data"
            ),
            "Two or more moves: " + summaries.numbers_note(randomised, every, every, levels),
            "Re-entry: " + summaries.numbers_note(randomised, home, home, levels, "a return home"),
        ],
    )


if __name__ == "__main__":
    main(body, "05_placement_stability.py", __doc__)
