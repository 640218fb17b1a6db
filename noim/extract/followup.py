"""Missing is not the same as not yet due: the one rule for visits and outcomes.

On a date ``as_of`` a follow-up visit is **due** once its window has closed (its last day
is before ``as_of``) or once it was completed (on or before ``as_of``).  A child's outcome at
a timepoint is then

* ``observed``: the score is present;
* ``not yet reached``: no score, and the child's visit at that timepoint is not yet due (its
  window is still open, or not open yet).  Such a child is neither missing nor imputed:
  the outcome may still come;
* ``missing``: no score, and the visit is due (or the child has no live visit at that
  timepoint).

Retention (visits completed among visits due), data completeness (due visits with a form),
the missing-data tables and multiple imputation all count with this rule
(``noim.reports.operational.visit_table``, ``noim.reports.summaries.outcome_data``,
``stats.mi_compare_arms(..., due=)``).  Pure functions of the ``visits`` dataset
(``noim.extract.visits``), so they give the same answer on live data and on a data freeze.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

__all__ = ["MISSING", "NOT_YET_REACHED", "OBSERVED", "STATUSES", "outcome_status", "visit_due"]

OBSERVED = "observed"
MISSING = "missing"
NOT_YET_REACHED = "not yet reached"
#: the outcome statuses, in table order
STATUSES = (OBSERVED, MISSING, NOT_YET_REACHED)


def visit_due(visits: pd.DataFrame, as_of: date) -> pd.Series:
    """Whether each visit (row of the ``visits`` dataset) is due on ``as_of``: its window
    closed before ``as_of``, or it was completed on or before ``as_of``."""
    day = pd.Timestamp(as_of)
    closed = (visits["window_end"] < day).fillna(False).astype(bool)
    done = (visits["status"] == "completed").fillna(False).astype(bool) & (
        visits["completed_on"] <= day
    ).fillna(False).astype(bool)
    return (closed | done).rename("due")


def outcome_status(
    df: pd.DataFrame, column: str, visits: pd.DataFrame, timepoint: str, as_of: date
) -> pd.Series:
    """The status of ``column`` (an outcome at ``timepoint``) for each row (child) of
    ``df``: ``observed``, ``missing`` or ``not yet reached`` (module docstring)."""
    at = (visits["timepoint"] == timepoint).fillna(False).astype(bool)
    waiting = set(visits.loc[at & ~visit_due(visits, as_of), "child_id"].astype(str))
    observed = df[column].notna().to_numpy()
    not_due = df["child_id"].astype(str).isin(waiting).to_numpy()
    status = np.where(observed, OBSERVED, np.where(not_due, NOT_YET_REACHED, MISSING))
    return pd.Series(status, index=df.index, dtype=object, name=f"{column}_status")
