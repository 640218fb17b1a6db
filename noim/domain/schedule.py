"""Follow-up visits: dates from the trial definition's anchors, and the status a visit is in.

Each timepoint counts from its own anchor: the child's entry to care (baseline, 15
months) or the family's randomisation (2.5 years).  Stored statuses are
``scheduled``, ``completed``, ``missed`` and ``not_required``; what a coordinator
chases is derived from the dates:

* ``scheduled``: the window has not opened yet;
* ``due``: the window is open and the visit is not done;
* ``overdue``: the window has closed and the visit is not done;
* ``completed_in_window`` / ``completed_late`` (or ``completed_early``);
* ``missed``, ``not_required`` (withdrawn from follow-up, or excluded) as stored.

The first timepoint of the trial definition is the baseline; every later one is
a follow-up, which cannot be done before the family's randomisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from noim.domain.trialdef import TimepointDef

#: every status ``visit_status`` returns, in the order a visit passes through them
DERIVED_STATUSES = (
    "scheduled",
    "due",
    "overdue",
    "completed_early",
    "completed_in_window",
    "completed_late",
    "missed",
    "not_required",
)
#: the derived statuses of a visit still to be done (stored status ``scheduled``)
OPEN_STATUSES = ("scheduled", "due", "overdue")


@dataclass(frozen=True)
class PlannedVisit:
    timepoint: str
    anchor_date: date
    target_date: date
    window_start: date
    window_end: date


def plan_visits(
    timepoints: Sequence[TimepointDef], entered_care_on: date, randomised_on: date | None
) -> list[PlannedVisit]:
    """The visits a child is due, for every timepoint whose anchor date is known."""
    out = []
    for tp in timepoints:
        anchor = entered_care_on if tp.anchor == "entry_to_care" else randomised_on
        if anchor is None:
            continue
        out.append(
            PlannedVisit(
                timepoint=tp.code,
                anchor_date=anchor,
                target_date=tp.offset.add_to(anchor),
                window_start=tp.window_start.add_to(anchor),
                window_end=tp.window_end.add_to(anchor),
            )
        )
    return out


def visit_status(
    stored: str, window_start: date, window_end: date, completed_on: date | None, today: date
) -> str:
    """The status a coordinator sees (see the module docstring)."""
    if stored in ("missed", "not_required"):
        return stored
    if stored == "completed" and completed_on is not None:
        if completed_on < window_start:
            return "completed_early"
        return "completed_in_window" if completed_on <= window_end else "completed_late"
    if today < window_start:
        return "scheduled"
    return "due" if today <= window_end else "overdue"
