"""Baseline characteristics by arm (ITT set).

Children: n, age at entry to care (months), sex, site, the stratification factors (age band
of the family's youngest child, family size) and the baseline SDQ scores (carer report).
Continuous: mean (SD) [n observed]; categorical: n (%).  No tests (CONSORT item 15).
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from _common import Run, main

SDQ_BASELINE = (
    ("sdq_total_difficulties_baseline", "SDQ total difficulties"),
    ("sdq_emotional_baseline", "SDQ emotional symptoms"),
    ("sdq_conduct_baseline", "SDQ conduct problems"),
    ("sdq_hyperactivity_baseline", "SDQ hyperactivity"),
    ("sdq_peer_baseline", "SDQ peer problems"),
    ("sdq_prosocial_baseline", "SDQ prosocial"),
)


def mean_sd(values: pd.Series) -> str:
    x = values.dropna().astype(float)
    if len(x) == 0:
        return "–"
    sd = f"{x.std(ddof=1):.1f}" if len(x) > 1 else "–"
    return f"{x.mean():.1f} ({sd}) [{len(x)}]"


def n_pct(hit: pd.Series) -> str:
    n, total = int(hit.sum()), len(hit)
    return f"{n} ({100 * n / total:.0f}%)" if total else "0"


def body(run: Run) -> None:
    kids = run.extract("children")
    kids = kids[kids["itt"]].reset_index(drop=True)
    wide = run.extract("scores", wide=True)
    data = kids.merge(
        wide.drop(columns=["family_id", "site", "arm", "arm_masked"]), on="child_id", how="left"
    )
    groups = {str(a): data[data["arm"] == a] for a in run.arms(data)} if run.two_arms(data) else {}
    groups["all"] = data
    rows: list[dict[str, str]] = []

    def add(label: str, cell: Callable[[pd.DataFrame], str]) -> None:
        rows.append({"characteristic": label, **{g: cell(part) for g, part in groups.items()}})

    add("children, n", lambda p: str(len(p)))
    add("families, n", lambda p: str(p["family_id"].nunique()))
    add("age at entry to care (months), mean (SD) [n]", lambda p: mean_sd(p["age_at_entry_months"]))
    for column, label in (
        ("sex", "sex"),
        ("site", "site"),
        ("youngest_age_band", "youngest child's age band (stratum)"),
        ("family_size", "children in family (stratum)"),
    ):
        for level in sorted(data[column].dropna().unique().tolist()):
            add(f"{label}: {level}, n (%)", lambda p, c=column, v=level: n_pct(p[c] == v))
    for column, label in SDQ_BASELINE:
        if column in data.columns:
            add(f"{label}, mean (SD) [n]", lambda p, c=column: mean_sd(p[c]))
    run.table(
        "baseline",
        pd.DataFrame(rows),
        "Baseline characteristics" + (" by arm" if len(groups) > 1 else ""),
        [
            "ITT set. Continuous: mean (SD) [number observed]; categorical: n (% of the column).",
            "Stratification factors as recorded at randomisation (family level, shown per child).",
        ],
    )


if __name__ == "__main__":
    main(body, "02_baseline.py", __doc__)
