"""The record status dashboard of one child: timepoints x forms, one status per cell.

Pure rules, as REDCap's record status dashboard shows them to coordinators.  A row per
timepoint of the trial definition; a column for the visit itself and one per instrument
any timepoint schedules.  A cell is one of ``GRID_STATUSES``:

* ``complete`` / ``complete_late``: a live assessment of the instrument at the timepoint
  (late when dated after the visit's window closed); for the visit column, the visit was
  completed in (or before) its window / after it;
* ``missed``, ``not_required``: as the visit was recorded (every form of the visit);
* ``not_due``: the window has not opened (or the visit cannot be dated yet: a
  follow-up anchored on a randomisation that has not happened);
* ``due``: the window is open and the form is not entered; ``overdue``: it closed;
* ``not_required`` also for a scheduled instrument the child's age rules out (age in
  completed months on the assessment date, else the visit's completion date, else its
  target date, exactly as the demo decides which forms a visit needs);
* ``not_applicable``: the timepoint does not schedule the instrument at all.

A visit that is completed but lacks an expected form keeps that form ``due`` until the
window closes and ``overdue`` after: the data still has to be entered.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date

from noim.domain.durations import months_between
from noim.domain.schedule import plan_visits, visit_status
from noim.domain.trialdef import ScheduledInstrument, TimepointDef

GRID_STATUSES = (
    "not_due",
    "due",
    "overdue",
    "complete",
    "complete_late",
    "missed",
    "not_required",
    "not_applicable",
)
GRID_STATUS_LABELS = {
    "not_due": "not due",
    "due": "due",
    "overdue": "overdue",
    "complete": "complete",
    "complete_late": "complete (late)",
    "missed": "missed",
    "not_required": "not required",
    "not_applicable": "not at this timepoint",
}
VISIT_FORM = "visit"


@dataclass(frozen=True)
class VisitFacts:
    """A live (not voided) visit as stored."""

    id: int
    timepoint: str
    status: str  # stored: scheduled, completed, missed, not_required
    target_date: date
    window_start: date
    window_end: date
    completed_on: date | None
    reason: str | None


@dataclass(frozen=True)
class AssessmentFacts:
    """A live assessment of the child."""

    id: int
    timepoint: str
    instrument: str
    assessed_on: date


@dataclass(frozen=True)
class GridCell:
    timepoint: str
    form: str  # VISIT_FORM or an instrument code
    status: str
    visit_id: int | None
    assessment_id: int | None
    #: date of the assessment or of the visit's outcome
    on: date | None
    #: why (a visit's recorded reason, the age rule that rules a form out)
    note: str | None = None
    #: live assessments of the instrument at the timepoint (more than one: see the list)
    count: int = 0

    @property
    def label(self) -> str:
        return GRID_STATUS_LABELS[self.status]


@dataclass(frozen=True)
class GridRow:
    timepoint: str
    label: str
    visit_id: int | None
    target_date: date | None
    window_start: date | None
    window_end: date | None
    cells: tuple[GridCell, ...]


@dataclass(frozen=True)
class StatusGrid:
    child: str
    forms: tuple[str, ...]
    rows: tuple[GridRow, ...]

    def cell(self, timepoint: str, form: str) -> GridCell:
        for row in self.rows:
            if row.timepoint == timepoint:
                for c in row.cells:
                    if c.form == form:
                        return c
        raise KeyError((timepoint, form))


def grid_forms(timepoints: Sequence[TimepointDef]) -> tuple[str, ...]:
    """The columns: the visit, then every scheduled instrument in first-scheduled order."""
    seen: list[str] = []
    for tp in timepoints:
        for si in tp.instruments:
            if si.instrument not in seen:
                seen.append(si.instrument)
    return (VISIT_FORM, *seen)


def _age_rule(si: ScheduledInstrument, age: int) -> str | None:
    """Why ``si`` is not for a child of ``age`` months (None: it is)."""
    lo, hi = si.min_age_months, si.max_age_months
    if (lo is not None and age < lo) or (hi is not None and age > hi):
        span = f"{lo or 0}-{hi} months" if hi is not None else f"from {lo} months"
        return f"age {age} months: {si.instrument} is for {span}"
    return None


def forms_to_enter(
    tp: TimepointDef, date_of_birth: date, target_date: date, entered: Collection[str]
) -> tuple[str, ...]:
    """The instruments still to enter at a visit still to do (its window open: the due and
    overdue cells of its row of the grid): scheduled at ``tp`` for the child's age on the
    visit's ``target_date`` (as ``build_grid`` decides for a visit not done) and not among
    the instruments ``entered`` at the timepoint, in the order the timepoint lists them."""
    age = months_between(date_of_birth, target_date)
    return tuple(
        dict.fromkeys(
            si.instrument
            for si in tp.instruments
            if si.instrument not in entered and _age_rule(si, age) is None
        )
    )


def _open_status(window_start: date, window_end: date, today: date) -> str:
    derived = visit_status("scheduled", window_start, window_end, None, today)
    return "not_due" if derived == "scheduled" else derived


def build_grid(
    child: str,
    timepoints: Sequence[TimepointDef],
    date_of_birth: date,
    entered_care_on: date,
    randomised_on: date | None,
    visits: Sequence[VisitFacts],
    assessments: Sequence[AssessmentFacts],
    today: date,
) -> StatusGrid:
    """The child's grid (see the module docstring)."""
    forms = grid_forms(timepoints)
    by_tp = {v.timepoint: v for v in visits}
    planned = {p.timepoint: p for p in plan_visits(timepoints, entered_care_on, randomised_on)}
    done: dict[tuple[str, str], list[AssessmentFacts]] = {}
    for a in sorted(assessments, key=lambda a: (a.assessed_on, a.id)):
        done.setdefault((a.timepoint, a.instrument), []).append(a)
    rows = []
    for tp in timepoints:
        v = by_tp.get(tp.code)
        p = planned.get(tp.code)
        ws = v.window_start if v else p.window_start if p else None
        we = v.window_end if v else p.window_end if p else None
        target = v.target_date if v else p.target_date if p else None
        cells = [_visit_cell(tp.code, v, ws, we, today)]
        scheduled = {si.instrument: si for si in tp.instruments}
        for form in forms[1:]:
            cells.append(
                _form_cell(
                    tp.code,
                    form,
                    scheduled.get(form),
                    v,
                    ws,
                    we,
                    target,
                    done,
                    date_of_birth,
                    today,
                )
            )
        rows.append(GridRow(tp.code, tp.label, v.id if v else None, target, ws, we, tuple(cells)))
    return StatusGrid(child, forms, tuple(rows))


def _visit_cell(
    tp: str, v: VisitFacts | None, ws: date | None, we: date | None, today: date
) -> GridCell:
    if v is None:
        status = "not_due" if ws is None or we is None else _open_status(ws, we, today)
        return GridCell(tp, VISIT_FORM, status, None, None, None)
    if v.status in ("missed", "not_required"):
        return GridCell(tp, VISIT_FORM, v.status, v.id, None, None, v.reason)
    if v.status == "completed" and v.completed_on is not None:
        late = v.completed_on > v.window_end
        status = "complete_late" if late else "complete"
        return GridCell(tp, VISIT_FORM, status, v.id, None, v.completed_on)
    return GridCell(
        tp, VISIT_FORM, _open_status(v.window_start, v.window_end, today), v.id, None, None
    )


def _form_cell(
    tp: str,
    form: str,
    si: ScheduledInstrument | None,
    v: VisitFacts | None,
    ws: date | None,
    we: date | None,
    target: date | None,
    done: dict[tuple[str, str], list[AssessmentFacts]],
    dob: date,
    today: date,
) -> GridCell:
    vid = v.id if v else None
    entered = done.get((tp, form), [])
    if entered:
        last = entered[-1]
        late = we is not None and last.assessed_on > we
        status = "complete_late" if late else "complete"
        return GridCell(tp, form, status, vid, last.id, last.assessed_on, None, len(entered))
    if si is None:
        return GridCell(tp, form, "not_applicable", vid, None, None)
    if v is not None and v.status in ("missed", "not_required"):
        return GridCell(tp, form, v.status, vid, None, None, v.reason)
    when = (v.completed_on if v and v.completed_on else None) or target
    if when is not None:
        why = _age_rule(si, months_between(dob, when))
        if why is not None:
            return GridCell(tp, form, "not_required", vid, None, None, why)
    if ws is None or we is None:
        return GridCell(tp, form, "not_due", vid, None, None)
    return GridCell(tp, form, _open_status(ws, we, today), vid, None, None)
