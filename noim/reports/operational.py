"""The report's operational tables, computed from the operational datasets
(``noim.extract.operations``: screening, visits, queries, exits) and the trial definition.

Pure functions of DataFrames: the same code whether the frames were built live or read
from a data freeze.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from noim.domain.trialdef import TrialDefinition

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
    """Per timepoint and site: visits, due, completed, missed and overdue on ``as_of``.

    Completed = completed on or before ``as_of`` (a later completion counts as still
    scheduled then); due = window closed before ``as_of``, or completed; overdue = still
    scheduled after the window closed.
    """
    day = pd.Timestamp(as_of)
    closed = visits["window_end"] < day
    done = (visits["status"] == "completed") & (visits["completed_on"] <= day)
    scheduled = (visits["status"] == "scheduled") | ((visits["status"] == "completed") & ~done)
    counts = pd.DataFrame(
        {
            "timepoint": visits["timepoint"].astype(object),
            "site": visits["site"].astype(object),
            "visits": 1,
            "due": (closed | done).astype("int64"),
            "completed": done.astype("int64"),
            "missed": (visits["status"] == "missed").astype("int64"),
            "overdue": (scheduled & closed).astype("int64"),
        }
    )
    cols = ["timepoint", "site", "visits", "due", "completed", "missed", "overdue"]
    if not len(counts):
        return pd.DataFrame(columns=cols).astype(dict.fromkeys(cols[2:], "int64"))
    table = counts.groupby(["timepoint", "site"], sort=True).sum().reset_index()
    return table[cols].astype(dict.fromkeys(cols[2:], "int64"))


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
