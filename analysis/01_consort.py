"""CONSORT flow: screened, eligible, enrolled, randomised, followed up, withdrawn, lost, analysed.

Counts of families (screening log) and children (analysis datasets) by arm: the numbers of
the CONSORT diagram.  Followed up = an SDQ (carer) at that timepoint; analysed = in the ITT
set with the primary outcome (SDQ total difficulties at 30 months) and its baseline observed
(the complete cases of the primary analysis).
"""

from __future__ import annotations

import pandas as pd
from _common import Run, main, outcome_data

from noim.reports import operational, summaries


def body(run: Run) -> None:
    log = run.extract("screening")  # frozen with the other datasets when --freeze is given
    n = operational.screening_counts(log)
    run.table(
        "screening",
        pd.DataFrame(
            [
                ("families screened", n["screened"]),
                ("children in screened families", n["children"]),
                ("families eligible", n["eligible"]),
                ("families not eligible", n["ineligible"]),
                ("eligible families who declined", n["declined"]),
                ("families enrolled (registered from the log)", n["enrolled"]),
            ],
            columns=["stage", "n"],
        ),
        "Screening (families, from the screening log)",
        [
            "Counts of live (not voided) screening entries at every site screened by "
            f"{run.as_of.isoformat()} (the `screening` dataset"
            + (f" of data freeze {run.freeze.id})." if run.freeze is not None else ").")
        ],
    )
    kids = run.extract("children")
    by_arm = run.two_arms(kids)
    flow = summaries.flow_counts(
        kids,
        run.extract("scores"),
        run.extract("scores", wide=True),
        outcome_data(run),
        "arm" if by_arm else None,
    )
    table = pd.DataFrame({str(level): pd.Series(c) for level, c in flow.items()})
    table = table.rename_axis("stage").reset_index()
    if by_arm:
        table["total"] = table[[str(level) for level in flow]].sum(axis=1)
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
