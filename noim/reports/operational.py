"""The report's operational tables, computed from the operational datasets
(``noim.extract.operations``: screening, visits, queries, exits) and the trial definition.

Pure functions of DataFrames: the same code whether the frames were built live or read
from a data freeze.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from noim.domain.trialdef import TrialDefinition
from noim.extract.followup import visit_due

#: age bands of open data queries, in days since raised
QUERY_AGES = ((0, 30, "0-30 days"), (31, 90, "31-90 days"), (91, 10**9, "over 90 days"))
#: query statuses that count as open
OPEN_STATUSES = ("open", "answered")


def screening_counts(screening: pd.DataFrame) -> dict[str, int]:
    """Families screened (and their children), eligible, not eligible, declined and
    enrolled (screening log)."""
    return {
        "screened": len(screening),
        "children": int(screening["n_children"].sum()),
        "eligible": int(screening["eligible"].sum()),
        "ineligible": int((~screening["eligible"]).sum()),
        "declined": int(screening["declined"].sum()),
        "enrolled": int(screening["enrolled"].sum()),
    }


def not_eligible_reasons(screening: pd.DataFrame) -> dict[str, int]:
    """Reason -> families not eligible (``not given`` when none was recorded)."""
    reasons = screening.loc[~screening["eligible"], "ineligible_reason"]
    counts = reasons.astype(object).where(reasons.notna(), "not given").value_counts()
    return dict(sorted((str(r), int(n)) for r, n in counts.items()))


def visit_table(visits: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Per timepoint and site: visits, not yet due, due, and the due ones completed, missed,
    not required and overdue on ``as_of``.

    Due = window closed before ``as_of``, or completed on or before it
    (``noim.extract.followup.visit_due``: the rule the missing-data tables and multiple
    imputation use); a visit not yet due is neither missed nor overdue, whatever its stored
    status (a visit recorded missed or not required while its window is open counts once
    it closes).  Completed = completed on or before ``as_of`` (a later completion counts as
    still scheduled then); overdue = due, still scheduled.  So ``visits = not_yet_due +
    due`` and ``due = completed + missed + not_required + overdue``.
    """
    due = visit_due(visits, as_of).to_numpy()
    day = pd.Timestamp(as_of)
    status = visits["status"].astype(object)
    done = ((status == "completed") & (visits["completed_on"] <= day)).fillna(False)
    done = done.astype(bool).to_numpy()
    missed = due & (status == "missed").to_numpy()
    waived = due & (status == "not_required").to_numpy()
    counts = pd.DataFrame(
        {
            "timepoint": visits["timepoint"].astype(object),
            "site": visits["site"].astype(object),
            "visits": 1,
            "not_yet_due": (~due).astype("int64"),
            "due": due.astype("int64"),
            "completed": done.astype("int64"),
            "missed": missed.astype("int64"),
            "not_required": waived.astype("int64"),
            "overdue": (due & ~done & ~missed & ~waived).astype("int64"),
        }
    )
    cols = list(counts.columns)
    if not len(counts):
        return pd.DataFrame(columns=cols).astype(dict.fromkeys(cols[2:], "int64"))
    table = counts.groupby(["timepoint", "site"], sort=True).sum().reset_index()
    return table[cols].astype(dict.fromkeys(cols[2:], "int64"))


def due_with_form(visits: pd.DataFrame, forms: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Per timepoint and site: due visits (``visit_table``'s rule) whose child has at least
    one form recorded at that timepoint (``forms``: child_id, timepoint) - the numerator of
    data completeness, whose denominator is the due visits."""
    due = visits[visit_due(visits, as_of).to_numpy()]
    seen = forms[["child_id", "timepoint"]].astype(object).drop_duplicates()
    hit = due[["child_id", "timepoint", "site"]].astype(object).merge(seen, how="inner")
    counts = hit.groupby(["timepoint", "site"]).size().rename("due_with_form").reset_index()
    return counts.astype({"due_with_form": "int64"})


def open_query_ages(queries: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Open (or answered) data queries per site by age band on ``as_of``."""
    cols = ["site", *(label for _, _, label in QUERY_AGES), "total"]
    counts: dict[str, dict[str, int]] = {}
    open_ = queries[queries["status"].isin(OPEN_STATUSES)]
    for site, raised in zip(open_["site"], open_["raised_on"], strict=True):
        age = (as_of - raised.date()).days
        label = next(lb for _, hi, lb in QUERY_AGES if age <= hi)
        row = counts.setdefault("none" if pd.isna(site) else str(site), dict.fromkeys(cols[1:], 0))
        row[label] += 1
        row["total"] += 1
    return pd.DataFrame([{"site": k, **v} for k, v in sorted(counts.items())], columns=cols)


def exit_rows(exits: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(child, what, reason): ``withdrawn from <level>`` or ``lost to follow-up``."""
    out = []
    for child, kind, level, reason in zip(
        exits["child_id"], exits["exit"], exits["level"], exits["reason"], strict=True
    ):
        what = (
            f"withdrawn from {str(level).replace('_', ' ')}"
            if kind == "withdrawal"
            else "lost to follow-up"
        )
        out.append((str(child), what, str(reason)))
    return out


def arm_words(definition: TrialDefinition) -> list[str]:
    """What the open report must not name (``TrialDefinition.arm_words``)."""
    return definition.arm_words()
