"""Baseline characteristics by arm (ITT set).

Children: n, age at entry to care (months), sex, site, the stratification factors (age band
of the family's youngest child, family size) and the baseline SDQ scores (carer report).
Continuous: mean (SD) [n observed]; categorical: n (%).  No tests (CONSORT item 15).
"""

from __future__ import annotations

from _common import Run, main

from noim.reports import summaries


def body(run: Run) -> None:
    kids = run.extract("children")
    wide = run.extract("scores", wide=True)
    by_arm = run.two_arms(kids)
    table = summaries.baseline_table(kids, wide, by_arm)
    run.table(
        "baseline",
        table,
        "Baseline characteristics" + (" by arm" if by_arm else ""),
        [
            "ITT set. Continuous: mean (SD) [number observed]; categorical: n (% of the column).",
            "Stratification factors as recorded at randomisation (family level, shown per child).",
        ],
    )


if __name__ == "__main__":
    main(body, "02_baseline.py", __doc__)
