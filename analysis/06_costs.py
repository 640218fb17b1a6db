"""Service costs by arm (ITT): mean cost per child and the difference with bootstrap CIs.

Costs: quantity x unit cost of every service-use record by the end of follow-up (not
discounted, not pro-rated).  Costs by arm are an unblinded analysis: for a blinded reader
the services the trial definition marks as revealing the arm (the intervention team's
sessions) are left out of every cost, and the tables say so.  Difference in mean cost
(intervention minus control, NIM - SAU) with a
cluster bootstrap by family, stratified by arm (percentile, BCa and normal 95% intervals),
seeded with ``--seed`` so reruns give the same intervals.
"""

from __future__ import annotations

import pandas as pd
from _common import Run, main

from noim import stats
from noim.reports import summaries

N_BOOT = 2000


def body(run: Run) -> None:
    data = run.itt(run.extract("costs"))
    currency = ", ".join(sorted(data["currency"].dropna().unique().tolist())) or "no records"
    prices = ";".join(sorted(set(";".join(data["price_years"].dropna()).split(";")) - {""}))
    by_arm = run.two_arms(data)
    keys = data["arm"] if by_arm else pd.Series("all", index=data.index)
    g = data.groupby(keys)["total_cost"]
    described = pd.DataFrame(
        {
            "children": g.size(),
            "with_records": data.groupby(keys)["n_records"].apply(lambda s: int((s > 0).sum())),
            "mean": g.mean(),
            "sd": g.std(ddof=1),
            "median": g.median(),
            "total": g.sum(),
        }
    )
    notes = [f"Unit cost price year(s): {prices or 'none'}."]
    if data["arm_revealing_cost"].isna().all() and run.arm_coding in ("masked", "dummy"):
        notes.append(
            "Blinded: the services that reveal the arm (trial definition, [economics] "
            "arm_revealing_services) are left out of these costs."
        )
    run.table(
        "costs_by_arm",
        described.rename_axis("arm").reset_index(),
        f"Service costs per child ({currency})",
        notes,
    )
    if not by_arm:
        return
    result = stats.cost_difference(
        data, "total_cost", "arm", cluster="family_id", n_boot=N_BOOT, rng=run.seed
    )
    ref, comparison = result.levels
    rows = [
        {"interval": name, "estimate": result.estimate, "lower": lo, "upper": hi}
        for name, (lo, hi) in (
            ("percentile", result.ci),
            ("BCa", result.ci_bca),
            ("normal", result.ci_normal),
        )
    ]
    table = pd.DataFrame(rows)
    table.insert(0, "comparison", f"{comparison} - {ref}")
    table["bootstrap_se"] = result.se
    run.table(
        "cost_difference",
        table,
        f"Difference in mean cost per child ({currency})",
        [
            run.direction(),
            f"Cluster bootstrap by family within arm, {result.n_boot} replicates, seed {run.seed}.",
            summaries.numbers_note(
                run.randomised(),
                summaries.arm_counts(data, data["total_cost"].notna()),
                summaries.arm_counts(data, data["total_cost"].notna()),
                [comparison, ref],
                "a cost",
            ),
        ],
    )


if __name__ == "__main__":
    main(body, "06_costs.py", __doc__)
