"""Missing is not the same as not yet due (noim.extract.followup): the one rule for visits
and outcomes, and the report's retention table that counts with it.  Pure functions of the
``visits`` dataset; the analysis scripts and the report on a trial are tested in
test_analysis_scripts.py, test_reports.py and test_extract.py."""

from __future__ import annotations

from datetime import date

import pandas as pd

from noim.extract import followup
from noim.reports import operational

AS_OF = date(2026, 6, 30)


def visits() -> pd.DataFrame:
    """One 30m visit per child a..h, on ``AS_OF``:

    a completed in its window (due); b window closed, still scheduled (due: overdue);
    c window open, scheduled (not yet due); d window not yet open (not yet due);
    e window closed, missed (due); f window open, recorded missed (not yet due);
    g window closed, not required (due); h completed after AS_OF, window open (not yet due);
    i window ends on AS_OF itself (still open: not yet due)."""
    t = pd.Timestamp
    rows = [
        ("a", "2026-01-01", "2026-07-31", "completed", "2026-02-01"),
        ("b", "2025-11-01", "2026-05-31", "scheduled", None),
        ("c", "2026-06-01", "2026-12-31", "scheduled", None),
        ("d", "2026-09-01", "2027-03-31", "scheduled", None),
        ("e", "2025-10-01", "2026-04-30", "missed", None),
        ("f", "2026-05-01", "2026-11-30", "missed", None),
        ("g", "2025-09-01", "2026-03-31", "not_required", None),
        ("h", "2026-06-01", "2026-12-31", "completed", "2026-07-15"),
        ("i", "2026-01-01", "2026-06-30", "scheduled", None),
    ]
    return pd.DataFrame(
        {
            "child_id": pd.Series([r[0] for r in rows], dtype="string"),
            "family_id": pd.Series([f"F{r[0]}" for r in rows], dtype="string"),
            "site": pd.Series(["GLA"] * len(rows), dtype="string"),
            "timepoint": pd.Series(["30m"] * len(rows), dtype="string"),
            "target_date": [t(r[1]) for r in rows],
            "window_start": [t(r[1]) for r in rows],
            "window_end": [t(r[2]) for r in rows],
            "status": pd.Series([r[3] for r in rows], dtype="string"),
            "completed_on": pd.to_datetime([r[4] for r in rows]),
        }
    )


def test_visit_due() -> None:
    due = followup.visit_due(visits(), AS_OF)
    got = dict(zip(visits()["child_id"], due, strict=True))
    assert got == {
        "a": True,
        "b": True,
        "c": False,
        "d": False,
        "e": True,
        "f": False,
        "g": True,
        "h": False,
        "i": False,
    }


def test_outcome_status() -> None:
    # scores: a observed; c observed early (its visit not marked complete); the rest missing;
    # "z" has no 30m visit at all (e.g. voided): missing
    scores = pd.DataFrame(
        {
            "child_id": ["a", "b", "c", "d", "e", "f", "g", "h", "i", "z"],
            "y": [5.0, None, 7.0, None, None, None, None, None, None, None],
        }
    )
    status = followup.outcome_status(scores, "y", visits(), "30m", AS_OF)
    assert dict(zip(scores["child_id"], status, strict=True)) == {
        "a": "observed",
        "b": "missing",
        "c": "observed",
        "d": "not yet reached",
        "e": "missing",
        "f": "not yet reached",
        "g": "missing",
        "h": "not yet reached",
        "i": "not yet reached",
        "z": "missing",
    }
    # another timepoint: no visit of that timepoint is pending, so every missing is missing
    other = followup.outcome_status(scores, "y", visits(), "15m", AS_OF)
    assert set(other[scores["y"].isna()]) == {"missing"}
    # a year later every window has closed: nothing is still to come
    later = followup.outcome_status(scores, "y", visits(), "30m", date(2027, 6, 30))
    assert "not yet reached" not in set(later)


def test_retention_counts_with_the_same_rule() -> None:
    table = operational.visit_table(visits(), AS_OF)
    assert table.to_dict("records") == [
        {
            "timepoint": "30m",
            "site": "GLA",
            "visits": 9,
            "not_yet_due": 5,  # c d f h i
            "due": 4,  # a b e g
            "completed": 1,  # a (h is completed after the as-of date)
            "missed": 1,  # e (f is recorded missed, its window still open)
            "not_required": 1,  # g
            "overdue": 1,  # b
        }
    ]
    row = table.iloc[0]
    assert row["visits"] == row["not_yet_due"] + row["due"]
    assert row["due"] == row["completed"] + row["missed"] + row["not_required"] + row["overdue"]
    forms = pd.DataFrame({"child_id": ["a", "b", "c"], "timepoint": ["30m", "30m", "30m"]})
    with_form = operational.due_with_form(visits(), forms, AS_OF)
    # a and b are due and have a form; c has one but is not yet due (it counts once due)
    assert with_form.to_dict("records") == [{"timepoint": "30m", "site": "GLA", "due_with_form": 2}]
    empty = operational.visit_table(visits().iloc[:0], AS_OF)
    assert list(empty.columns) == list(table.columns) and empty.empty
