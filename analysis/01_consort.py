"""CONSORT flow: screened, eligible, enrolled, randomised, followed up, withdrawn, lost, analysed.

Counts of families (screening log) and children (analysis datasets) by arm: the numbers of
the CONSORT diagram.  Followed up = an SDQ (carer) at that timepoint; analysed = in the ITT
set with the primary outcome (SDQ total difficulties at 30 months) and its baseline observed
(the complete cases of the primary analysis).
"""

from __future__ import annotations

from datetime import date

import pandas as pd
from _common import PRIMARY, PRIMARY_BASELINE, Run, main, outcome_data

from noim.services import screening


def body(run: Run) -> None:
    counts = screening.list_entries(run.db, run.actor).counts
    run.table(
        "screening",
        pd.DataFrame(
            [
                ("families screened", counts.screened),
                ("children in screened families", counts.children_screened),
                ("families eligible", counts.eligible),
                ("families not eligible", counts.ineligible),
                ("eligible families who declined", counts.declined),
                ("families enrolled (registered from the log)", counts.enrolled),
            ],
            columns=["stage", "n"],
        ),
        "Screening (families, from the screening log)",
        [
            "Counts of live (not voided) screening entries at every site"
            + (
                f", read live on {date.today().isoformat()}: the screening log is not part of "
                f"data freeze {run.freeze.id}."
                if run.freeze is not None
                else "."
            )
        ],
    )
    kids = run.extract("children")
    scores = run.extract("scores")
    wide = run.extract("scores", wide=True)
    by_arm = run.two_arms(kids)
    group = kids["arm"] if by_arm else pd.Series("all", index=kids.index)
    sdq = scores[(scores["instrument"] == "sdq") & (scores["scale"] == "total_difficulties")]
    sdq = sdq[sdq["respondent"] == "carer"]
    rows: dict[str, pd.Series] = {}
    rows["families randomised"] = kids.groupby(group)["family_id"].nunique()
    rows["children randomised"] = kids.groupby(group).size()
    rows["joined the family after randomisation"] = kids.groupby(group)[
        "joined_after_randomisation"
    ].sum()
    rows["excluded after randomisation"] = kids.groupby(group)["excluded_post_randomisation"].sum()
    rows["major protocol deviation"] = kids.groupby(group)["major_deviation"].sum()
    for level in ("intervention", "follow_up", "data"):
        hit = kids["withdrawn_level"].fillna("") == level
        rows[f"withdrawn from {level.replace('_', ' ')}"] = hit.groupby(group).sum()
    rows["lost to follow-up"] = kids.groupby(group)["lost_to_follow_up"].sum()
    arm_of = dict(zip(kids["child_id"], group, strict=True))
    prefix = "sdq_total_difficulties_"  # the wide columns follow the trial's timepoint order
    timepoints = [c.removeprefix(prefix) for c in wide.columns if c.startswith(prefix)]
    for timepoint in timepoints:
        seen = sdq.loc[sdq["timepoint"] == timepoint, "child_id"].drop_duplicates()
        rows[f"followed up at {timepoint} (SDQ)"] = seen.map(arm_of).value_counts()
    rows["in the ITT set"] = kids.groupby(group)["itt"].sum()
    rows["in the per-protocol set"] = kids.groupby(group)["per_protocol"].sum()
    complete = outcome_data(run).dropna(subset=[PRIMARY, PRIMARY_BASELINE])
    analysed = complete["child_id"]
    rows["analysed (ITT, SDQ at baseline and 30m)"] = analysed.map(arm_of).value_counts()
    levels = sorted(group.unique().tolist())
    table = pd.DataFrame(
        {str(level): [int(s.get(level, 0)) for s in rows.values()] for level in levels},
    )
    table.insert(0, "stage", list(rows))
    if by_arm:
        table["total"] = table[[str(level) for level in levels]].sum(axis=1)
    run.table(
        "flow",
        table,
        "Participant flow (children)" + (" by arm" if by_arm else ""),
        [
            "Withdrawals are the widest level by the as-of date; a child counts once.",
            "Children withdrawn from use of their data are outside the ITT set.",
        ],
    )


if __name__ == "__main__":
    main(body, "01_consort.py", __doc__)
