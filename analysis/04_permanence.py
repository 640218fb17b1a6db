"""Permanence: time from each child's time origin to the first permanence decision, by arm (ITT).

Competing risks (return home, adoption, kinship / special guardianship, long-term foster care,
other): Aalen–Johansen cumulative incidence of each outcome with Gray's test, and a Fine–Gray
model per outcome (subdistribution hazard ratio for arm, adjusted for site).  Time to any
permanence decision: Kaplan–Meier with the log-rank test, Cox hazard ratio (robust SE by
family) and the difference in restricted mean time to permanence.  Figures with numbers at
risk.  Censoring: end of follow-up (withdrawal, loss, end of schedule or the as-of date).
Time origin: the later of the family's randomisation and the child's own entry (entry to
care, or the date a child who joined the family later joined the trial); the permanence
dataset gives each child's (``time_origin``, ``time_origin_reason``).  The figures' time
axes and numbers at risk run every 6 months up to the longest follow-up.
"""

from __future__ import annotations

import pandas as pd
from _common import MONTH, Run, main

from noim import stats
from noim.reports import figures, summaries

CAUSES = summaries.CAUSES
AT_MONTHS = [0, 6, 12, 18, 24, 30]
TABLE_MONTHS = [12, 24, 30]
TAU_DAYS = 30 * MONTH  # restricted mean up to 30 months (or the shortest arm's follow-up)


def body(run: Run) -> None:
    data = run.itt(run.extract("permanence"))
    by_arm = run.two_arms(data)
    group = "arm" if by_arm else None
    data["any"] = (data["event"] > 0).astype(int)
    # arms as columns in sorted order, as every by-arm table (not the analysis order)
    keys = data["arm"].astype(object) if by_arm else pd.Series("all", index=data.index)
    counts = pd.crosstab(data["event"].map(CAUSES).fillna("censored"), keys)
    counts = counts.reindex(["censored", *CAUSES.values()], fill_value=0)
    counts = counts.rename_axis(index="outcome", columns=None).reset_index()
    run.table("permanence_events", counts, "First permanence decision: outcome by arm")

    if data["any"].sum() == 0:
        run.note("No permanence decisions by the as-of date: no curves or tests.")
        return
    cif = stats.cumulative_incidence(data, "duration", "event", group=group)
    at = cif.at([m * MONTH for m in TABLE_MONTHS])
    at.insert(2, "months", [round(t / MONTH) for t in at["time"]])
    at["outcome"] = at["cause"].map(CAUSES)
    at = at[["group", "outcome", "months", "estimate", "lower", "upper"]]
    run.table(
        "cumulative_incidence",
        at.rename(columns={"group": "arm"}),
        "Cumulative incidence of each permanence outcome",
        [
            "Aalen-Johansen estimates with 95% CI (cmprsk's variance, log(-log) limits); empty "
            "beyond an arm's last follow-up time."
        ],
    )
    at_months = figures.covering(AT_MONTHS, float(data["duration"].max()) / MONTH)
    risk = figures.numbers_at_risk(data, "duration", group, at_months, scale=MONTH)
    causes = [c for c in cif.causes if (data["event"] == c).any()]
    run.figure(
        "cumulative_incidence",
        figures.cif_figure(
            cif,
            CAUSES,
            "Cumulative incidence of the first permanence decision",
            causes=causes,
            at_times=at_months,
            at_risk=risk,
            scale=MONTH,
            xlabel=summaries.TIME_AXIS,
        ),
    )
    km = stats.kaplan_meier(data, "duration", "any", group=group)
    run.figure(
        "time_to_permanence",
        figures.km_figure(
            km,
            "Time to any permanence decision",
            at_times=at_months,
            ci=True,
            failure=True,
            scale=MONTH,
            xlabel=summaries.TIME_AXIS,
            ylabel="Cumulative probability of a decision",
        ),
    )
    summary = km.summary.reset_index().rename(
        columns={km.summary.index.name or "index": "arm", "estimate": "median"}
    )
    for column in ("median", "lower", "upper"):
        summary[column] = summary[column] / MONTH
    run.table(
        "time_to_permanence",
        summary,
        "Time to any permanence decision (Kaplan-Meier)",
        ["Median and its 95% CI in months; 'not reached' when the curve stays above 0.5."],
    )
    if not by_arm:
        return
    every = summaries.arm_counts(data)
    numbers = summaries.numbers_note(
        run.randomised(), every, every, list(reversed(run.arms(data))), "a permanence duration"
    )

    tests = []
    for cause in causes:
        label = f"Gray's test: {CAUSES[cause]}"
        try:
            g = stats.gray_test(data, "duration", "event", "arm", cause=cause)
            tests.append({"test": label, "statistic": g.statistic, "df": g.df, "p": g.pvalue})
        except stats.StatsInputError as exc:
            tests.append({"test": label, "note": f"not estimable: {exc}"})
    lr = stats.logrank(data, "duration", "any", "arm")
    tests.append(
        {"test": "log-rank: any decision", "statistic": lr.statistic, "df": lr.df, "p": lr.pvalue}
    )
    lr_site = stats.logrank(data, "duration", "any", "arm", strata="site")
    tests.append(
        {
            "test": "log-rank stratified by site: any decision",
            "statistic": lr_site.statistic,
            "df": lr_site.df,
            "p": lr_site.pvalue,
        }
    )
    run.table(
        "tests",
        pd.DataFrame(tests).reindex(columns=["test", "statistic", "df", "p", "note"]),
        "Tests of equal incidence by arm",
        [numbers],
    )

    models = []
    for cause in causes:
        label = f"Fine-Gray: {CAUSES[cause]}"
        try:
            fg = stats.fine_gray(data, "duration", "event", ["arm", "site"], cause=cause)
            models.append(_hazard_row(label, "subdistribution HR", fg))
        except stats.StatsInputError as exc:
            models.append({"model": label, "note": f"not estimable: {exc}"})
    try:
        fit = stats.cox(data, "duration", "any", ["arm", "site"], cluster="family_id")
        models.append(_hazard_row("Cox: any decision (robust SE by family)", "HR", fit))
    except stats.StatsInputError as exc:
        models.append({"model": "Cox: any decision", "note": f"not estimable: {exc}"})
    run.table(
        "hazard_ratios",
        pd.DataFrame(models).reindex(
            columns=[
                "model",
                "term",
                "measure",
                "estimate",
                "lower",
                "upper",
                "p",
                "n_dropped",
                "note",
            ]
        ),
        "Arm effect on the hazard of each outcome (adjusted for site)",
        [
            run.direction(),
            "Fine-Gray: other outcomes compete (cmprsk::crr conventions).",
            numbers,
        ],
    )

    tau = min(TAU_DAYS, float(data.groupby("arm")["duration"].max().min()))
    r = stats.rmst(data, "duration", "any", "arm", tau=tau)
    per_arm = r.summary.assign(statistic=float("nan"), p=float("nan"))
    diff = r.difference.assign(n=len(data))
    table = pd.concat([per_arm, diff])[["n", "estimate", "se", "lower", "upper", "statistic", "p"]]
    table[["estimate", "se", "lower", "upper"]] = (
        table[["estimate", "se", "lower", "upper"]] / MONTH
    )
    table.insert(0, "row", [str(i) for i in table.index])
    run.table(
        "rmst",
        table,
        f"Restricted mean time to a permanence decision up to {tau / MONTH:.1f} months",
        [
            "Months; one row per arm, then the difference with its normal 95% CI and p.",
            run.direction(),
            numbers,
        ],
    )


def _hazard_row(label: str, measure: str, result: stats.Result) -> dict[str, object]:
    summary = result.summary
    term = next(t for t in summary.index if str(t).startswith("arm["))
    row = summary.loc[term]
    return {
        "model": label,
        "term": term,
        "measure": measure,
        "estimate": row["estimate"],
        "lower": row["lower"],
        "upper": row["upper"],
        "p": row["p"],
        "n_dropped": result.n_dropped,  # rows with a missing value (dropped and counted)
    }


if __name__ == "__main__":
    main(body, "04_permanence.py", __doc__)
