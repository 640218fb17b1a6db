"""Follow-up visits: scheduled at randomisation, rescheduled when an anchor is corrected,
their outcomes recorded, and listed for coordinators to chase.

The set-based helpers (``schedule_children``, ``reschedule_entry_to_care``,
``complete_visits``, ``mark_not_required``) run inside a caller's unit of work so
other services (randomisation, corrections, withdrawals, exclusions, assessments)
change visits in the same transaction as their own records.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Select, and_, exists, or_, select
from sqlalchemy.orm import Session

from noim.db.audit import insert_rows, update_rows
from noim.db.base import utcnow
from noim.db.blinding import masked_text
from noim.db.models import (
    Allocation,
    Child,
    Family,
    FollowUpVisit,
    LossToFollowUp,
    PostRandomisationExclusion,
    Site,
    TimepointRow,
    Withdrawal,
)
from noim.db.session import Database
from noim.domain.exceptions import NotFound, Problem, ValidationError
from noim.domain.roles import Actor, Capability
from noim.domain.schedule import OPEN_STATUSES, plan_visits, visit_status
from noim.domain.trialdef import TrialDefinition
from noim.services.checks import require_reason
from noim.services.families import child_for

_CHUNK = 500  # ids per IN (...) list
#: withdrawals after which a child is no longer followed up
_FOLLOW_UP_ENDED = ("follow_up", "data")


# --------------------------------------------------------------------------- set-based helpers


def schedule_children(
    s: Session,
    definition: TrialDefinition,
    children: Sequence[Child],
    randomised_on: date | Mapping[int, date],
) -> int:
    """Create the visits each child is due (skipping those it already has); returns how many.

    ``randomised_on`` is the randomisation date of every child, or a date per child id
    (many families randomised in one unit of work).
    """
    ids = [c.id for c in children]
    have: set[tuple[int, str]] = set()
    for start in range(0, len(ids), _CHUNK):
        have.update(
            (int(child_id), str(code))
            for child_id, code in s.execute(
                select(FollowUpVisit.child_id, FollowUpVisit.timepoint_code).where(
                    FollowUpVisit.child_id.in_(ids[start : start + _CHUNK])
                )
            )
        )
    rows = []
    for child in children:
        on = randomised_on if isinstance(randomised_on, date) else randomised_on[child.id]
        for v in plan_visits(definition.timepoints, child.entered_care_on, on):
            if (child.id, v.timepoint) not in have:
                rows.append(
                    {
                        "child_id": child.id,
                        "timepoint_code": v.timepoint,
                        "anchor_date": v.anchor_date,
                        "target_date": v.target_date,
                        "window_start": v.window_start,
                        "window_end": v.window_end,
                        "status": "scheduled",
                    }
                )
    insert_rows(s, FollowUpVisit, rows)
    return len(rows)


def reschedule_entry_to_care(
    s: Session,
    definition: TrialDefinition,
    entered_care_on: Mapping[int, date],
    reason: str | None,
) -> int:
    """Recompute the dates of unfinished visits anchored on entry to care.

    ``entered_care_on`` maps child id to the child's (corrected) entry-to-care
    date.  Only visits still ``scheduled`` and not voided move; completed,
    missed and not-required visits keep their dates, and visits anchored on
    randomisation never move (allocations are never changed).  Returns the
    number of visits whose dates changed (each changed field audited with
    ``reason``).
    """
    anchored = [tp for tp in definition.timepoints if tp.anchor == "entry_to_care"]
    if not entered_care_on or not anchored:
        return 0
    ids = list(entered_care_on)
    changes: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), _CHUNK):
        visits = s.scalars(
            select(FollowUpVisit).where(
                FollowUpVisit.child_id.in_(ids[start : start + _CHUNK]),
                FollowUpVisit.timepoint_code.in_([tp.code for tp in anchored]),
                FollowUpVisit.status == "scheduled",
                FollowUpVisit.voided_at.is_(None),
            )
        )
        for v in visits:
            (plan,) = [
                p
                for p in plan_visits(anchored, entered_care_on[v.child_id], None)
                if p.timepoint == v.timepoint_code
            ]
            new = {
                "anchor_date": plan.anchor_date,
                "target_date": plan.target_date,
                "window_start": plan.window_start,
                "window_end": plan.window_end,
            }
            if any(getattr(v, k) != val for k, val in new.items()):
                changes[v.id] = new
    return update_rows(s, FollowUpVisit, changes, reason)


def mark_not_required(
    s: Session, child_ids: Collection[int], reason: str, open_on: date | None = None
) -> int:
    """Mark the children's unfinished visits not required, with ``reason``; returns how many.

    With ``open_on`` (a withdrawal's date) only visits whose window had not
    closed by then change: a visit whose window closed earlier was missed, not
    waived, and stays to be recorded as missed.  Without it (an exclusion)
    every unfinished visit changes.  Nothing is deleted; every change is audited.
    """
    return end_visits(s, dict.fromkeys(child_ids, (open_on, reason)), reason)


def end_visits(
    s: Session, ends: Mapping[int, tuple[date | None, str]], audit_reason: str | None = None
) -> int:
    """``mark_not_required`` for many children at once, each with its own date and reason.

    ``ends`` maps a child's id to ``(open_on, status_reason)``: the child's scheduled,
    live visits whose window had not closed by ``open_on`` (all of them when it is None)
    become not required with ``status_reason``.  One query per 500 children; the audit
    records ``audit_reason`` (default: the unit of work's reason).  Returns how many changed.
    """
    ids = list(ends)
    changes: dict[int, dict[str, Any]] = {}
    now = utcnow()
    for start in range(0, len(ids), _CHUNK):
        stmt = select(FollowUpVisit.id, FollowUpVisit.child_id, FollowUpVisit.window_end).where(
            FollowUpVisit.child_id.in_(ids[start : start + _CHUNK]),
            FollowUpVisit.status == "scheduled",
            FollowUpVisit.voided_at.is_(None),
        )
        for visit_id, child_id, window_end in s.execute(stmt):
            open_on, why = ends[child_id]
            if open_on is not None and window_end < open_on:
                continue
            changes[visit_id] = {
                "status": "not_required",
                "status_reason": why,
                "completed_at": now,
            }
    return update_rows(s, FollowUpVisit, changes, audit_reason)


def complete_visits(
    s: Session,
    completions: Mapping[int, date],
    reason: str | None = None,
    today: date | None = None,
) -> int:
    """Mark visits completed on the given dates (visit id -> date); returns how many changed.

    Only visits still ``scheduled`` (and not voided) change; others are left as
    they are, so calling this for an assessment of a visit already completed
    does nothing.  A date outside the visit's window is accepted: the derived
    status then says ``completed_early`` or ``completed_late``.  Every date is
    checked first and every problem reported (nothing is written when one
    fails): the visit exists (VIS-001), its child is not voided (VIS-002), the
    date is not after today (VIS-003), not before the child's date of birth
    (VIS-004), not before the visit's anchor date (VIS-005) and, for a
    follow-up (any timepoint after the first), not before randomisation
    (VIS-006).
    """
    if not completions:
        return 0
    today = today or utcnow().date()
    baseline = s.scalar(select(TimepointRow.code).order_by(TimepointRow.sort_order).limit(1))
    ids = list(completions)
    found: dict[int, Any] = {}
    for start in range(0, len(ids), _CHUNK):
        rows = s.execute(  # plain rows, not ORM objects: this runs for whole imports
            select(
                FollowUpVisit.id,
                FollowUpVisit.timepoint_code,
                FollowUpVisit.anchor_date,
                FollowUpVisit.status,
                FollowUpVisit.voided_at,
                Child.trial_id.label("child"),
                Child.date_of_birth,
                Child.voided_at.is_not(None).label("child_voided"),
                Allocation.randomised_at,
            )
            .join(Child, Child.id == FollowUpVisit.child_id)
            .outerjoin(Allocation, Allocation.family_id == Child.family_id)
            .where(FollowUpVisit.id.in_(ids[start : start + _CHUNK]))
        )
        found.update((r.id, r) for r in rows)
    problems: list[Problem] = []
    changes: dict[int, dict[str, Any]] = {}
    now = utcnow()
    for visit_id, on in completions.items():
        v = found.get(visit_id)
        if v is None:
            problems.append(
                Problem(f"visit {visit_id}", "id", visit_id, "VIS-001", "a follow-up visit's id")
            )
            continue
        if v.status != "scheduled" or v.voided_at is not None:
            continue
        randomised_on = v.randomised_at.date() if v.randomised_at is not None else None
        record = f"visit {v.timepoint_code} of child {v.child}"
        problems += completion_problems(
            record,
            on,
            v.date_of_birth,
            bool(v.child_voided),
            v.anchor_date,
            randomised_on,
            v.timepoint_code != baseline,
        )
        problems += [] if on <= today else [after_today(record, on, today)]
        changes[visit_id] = {
            "status": "completed",
            "completed_on": on,
            "status_reason": None,
            "completed_at": now,
        }
    if problems:
        raise ValidationError(problems)
    # the values are a date, an aware timestamp and codes: audited as given, not read back
    return update_rows(s, FollowUpVisit, changes, reason, reread=False)


def completion_problems(
    record: str,
    on: date,
    dob: date,
    child_voided: bool,
    anchor: date,
    randomised_on: date | None,
    follow_up: bool,
) -> list[Problem]:
    problems = []
    value = on.isoformat()
    if child_voided:
        problems.append(Problem(record, "child", "voided", "VIS-002", "a child that is not voided"))
    if on < dob:
        problems.append(
            Problem(record, "completed_on", value, "VIS-004", f"a date on or after birth ({dob})")
        )
    if on < anchor:
        problems.append(
            Problem(
                record,
                "completed_on",
                value,
                "VIS-005",
                f"a date on or after the visit's anchor date ({anchor})",
            )
        )
    if follow_up and randomised_on is not None and on < randomised_on:
        problems.append(
            Problem(
                record,
                "completed_on",
                value,
                "VIS-006",
                f"a follow-up dated on or after randomisation ({randomised_on})",
            )
        )
    return problems


def after_today(record: str, on: date, today: date) -> Problem:
    return Problem(
        record, "completed_on", on.isoformat(), "VIS-003", f"a date not after today ({today})"
    )


# --------------------------------------------------------------------------- one visit


@dataclass(frozen=True)
class VisitView:
    child: str
    timepoint: str
    anchor_date: date
    target_date: date
    window_start: date
    window_end: date
    #: derived: scheduled, due, overdue, completed_early/in_window/late, missed, not_required
    status: str
    completed_on: date | None
    reason: str | None


def _view(v: FollowUpVisit, child: str, today: date) -> VisitView:
    return VisitView(
        child=child,
        timepoint=v.timepoint_code,
        anchor_date=v.anchor_date,
        target_date=v.target_date,
        window_start=v.window_start,
        window_end=v.window_end,
        status=visit_status(v.status, v.window_start, v.window_end, v.completed_on, today),
        completed_on=v.completed_on,
        reason=v.status_reason,
    )


def _visit_for(
    s: Session, actor: Actor, child_trial_id: str, timepoint: str, action: str
) -> tuple[FollowUpVisit, Child]:
    """The child's visit at ``timepoint`` (site scope checked; voided children refused)."""
    child, _family, _site = child_for(s, actor, child_trial_id, action)
    record = f"visit {timepoint} of child {child.trial_id}"
    if child.voided_at is not None:
        raise ValidationError(
            Problem(record, "child", "voided", "VIS-002", "a child that is not voided")
        )
    visits = s.scalars(
        select(FollowUpVisit)
        .join(TimepointRow, TimepointRow.code == FollowUpVisit.timepoint_code)
        .where(FollowUpVisit.child_id == child.id, FollowUpVisit.voided_at.is_(None))
        .order_by(TimepointRow.sort_order)
    ).all()
    for v in visits:
        if v.timepoint_code == timepoint.strip():
            return v, child
    have = ", ".join(v.timepoint_code for v in visits)
    expected = (
        f"one of the child's scheduled timepoints: {have}"
        if have
        else "a scheduled visit (the child has none: visits are scheduled at randomisation)"
    )
    raise ValidationError(Problem(record, "timepoint", timepoint, "VIS-001", expected))


def _require_open(record: str, v: FollowUpVisit) -> None:
    if v.status != "scheduled":
        done = f"{v.status} on {v.completed_on}" if v.completed_on else v.status
        raise ValidationError(
            Problem(
                record,
                "status",
                done,
                "VIS-007",
                "a visit still scheduled (reopen it first, with a reason, to change its outcome)",
            )
        )


def complete_visit(
    db: Database,
    actor: Actor,
    child_trial_id: str,
    timepoint: str,
    completed_on: date,
    today: date | None = None,
) -> VisitView:
    """Record that a child's visit took place on ``completed_on`` (in its window or not)."""
    actor.require(Capability.WRITE_ASSESSMENTS, "record visits")
    today = today or utcnow().date()
    with db.write(actor) as s:
        v, child = _visit_for(s, actor, child_trial_id, timepoint, "record a visit of")
        _require_open(f"visit {v.timepoint_code} of child {child.trial_id}", v)
        complete_visits(s, {v.id: completed_on}, None, today)
        s.refresh(v)
        return _view(v, child.trial_id, today)


def record_missed(
    db: Database,
    actor: Actor,
    child_trial_id: str,
    timepoint: str,
    reason: str,
    today: date | None = None,
) -> VisitView:
    """Record that a visit was missed (only once its window has opened), with the reason."""
    actor.require(Capability.WRITE_ASSESSMENTS, "record visits")
    reason = require_reason(reason, f"recording visit {timepoint} of {child_trial_id} missed")
    today = today or utcnow().date()
    with db.write(actor, reason=reason) as s:
        v, child = _visit_for(s, actor, child_trial_id, timepoint, "record a visit of")
        record = f"visit {v.timepoint_code} of child {child.trial_id}"
        _require_open(record, v)
        if today < v.window_start:
            raise ValidationError(
                Problem(
                    record,
                    "status",
                    "missed",
                    "VIS-008",
                    f"a visit whose window has opened (it opens on {v.window_start}; "
                    "before then it can only be marked not required)",
                )
            )
        v.status, v.status_reason, v.completed_at = "missed", reason, utcnow()
        s.flush()
        return _view(v, child.trial_id, today)


def record_not_required(
    db: Database, actor: Actor, child_trial_id: str, timepoint: str, reason: str
) -> VisitView:
    """Record that a visit is not required (e.g. the child is too old for it), with the reason."""
    actor.require(Capability.WRITE_TRIAL_DATA, "waive visits")
    reason = require_reason(reason, f"marking visit {timepoint} of {child_trial_id} not required")
    with db.write(actor, reason=reason) as s:
        v, child = _visit_for(s, actor, child_trial_id, timepoint, "waive a visit of")
        _require_open(f"visit {v.timepoint_code} of child {child.trial_id}", v)
        v.status, v.status_reason, v.completed_at = "not_required", reason, utcnow()
        s.flush()
        return _view(v, child.trial_id, utcnow().date())


def reopen_visit(
    db: Database, actor: Actor, child_trial_id: str, timepoint: str, reason: str
) -> VisitView:
    """Correct a completed, missed or not-required visit back to scheduled (audited, with a reason)."""
    actor.require(Capability.WRITE_TRIAL_DATA, "reopen visits")
    reason = require_reason(reason, f"reopening visit {timepoint} of {child_trial_id}")
    with db.write(actor, reason=reason) as s:
        v, child = _visit_for(s, actor, child_trial_id, timepoint, "reopen a visit of")
        if v.status == "scheduled":
            raise ValidationError(
                Problem(
                    f"visit {v.timepoint_code} of child {child.trial_id}",
                    "status",
                    v.status,
                    "VIS-009",
                    "a visit with an outcome recorded (completed, missed or not required)",
                )
            )
        v.status, v.status_reason = "scheduled", f"reopened: {reason}"
        v.completed_on = v.completed_at = None
        s.flush()
        return _view(v, child.trial_id, utcnow().date())


def list_visits(
    db: Database, actor: Actor, child_trial_id: str, today: date | None = None
) -> list[VisitView]:
    """A child's visits in timepoint order, each with its derived status."""
    actor.require(Capability.READ_TRIAL_DATA, "list visits")
    today = today or utcnow().date()
    with db.read(actor) as s:
        child, _family, _site = child_for(s, actor, child_trial_id, "list the visits of")
        visits = s.scalars(
            select(FollowUpVisit)
            .join(TimepointRow, TimepointRow.code == FollowUpVisit.timepoint_code)
            .where(FollowUpVisit.child_id == child.id, FollowUpVisit.voided_at.is_(None))
            .order_by(TimepointRow.sort_order)
        )
        return masked_text(s, actor, [_view(v, child.trial_id, today) for v in visits], "reason")


# --------------------------------------------------------------------------- what to chase


@dataclass(frozen=True)
class DueVisit:
    child: str
    family: str
    site: str
    timepoint: str
    target_date: date
    window_start: date
    window_end: date
    status: str
    #: the visit's id (the web links a row to its forms)
    visit_id: int = 0


def _still_followed_up() -> Any:
    """Children neither lost to follow-up, excluded nor withdrawn from follow-up."""
    lost = exists().where(LossToFollowUp.child_id == Child.id, LossToFollowUp.voided_at.is_(None))
    excluded = exists().where(
        PostRandomisationExclusion.voided_at.is_(None),
        or_(
            PostRandomisationExclusion.child_id == Child.id,
            and_(
                PostRandomisationExclusion.child_id.is_(None),
                PostRandomisationExclusion.family_id == Child.family_id,
            ),
        ),
    )
    withdrawn = exists().where(
        Withdrawal.child_id == Child.id,
        Withdrawal.voided_at.is_(None),
        Withdrawal.level.in_(_FOLLOW_UP_ENDED),
    )
    return and_(~lost, ~excluded, ~withdrawn)


def due(
    db: Database,
    actor: Actor,
    site: str | None = None,
    within_days: int | None = None,
    today: date | None = None,
    status: str | None = None,
) -> list[DueVisit]:
    """Visits to chase (due or overdue, or opening within ``within_days``), soonest first.

    Children lost to follow-up, excluded after randomisation or withdrawn from
    follow-up are left out.  ``status`` keeps only visits in that derived
    status (``due``, ``overdue`` or ``scheduled``, the last meaning opening
    within ``within_days``).
    """
    actor.require(Capability.READ_TRIAL_DATA, "list follow-ups")
    if status is not None and status not in OPEN_STATUSES:
        raise ValidationError(
            Problem(
                "follow-up list",
                "status",
                status,
                "VIS-010",
                "one of " + ", ".join(OPEN_STATUSES) + " (the statuses of a visit still to do)",
            )
        )
    today = today or utcnow().date()
    horizon = today + timedelta(days=within_days or 0)
    with db.read(actor) as s:
        site_ids: list[int] | None = None
        if site is not None:
            site_row = s.scalar(select(Site).where(Site.code == site))
            if site_row is None:
                raise NotFound(f"no site {site!r}")
            actor.require_site(site_row.id, site_row.code, "list follow-ups")
            site_ids = [site_row.id]
        elif not actor.all_sites:
            site_ids = sorted(actor.site_ids)
        rows = due_views(s, due_statement(site_ids, horizon), today)
        return [r for r in rows if status is None or r.status == status]


def due_statement(
    site_ids: Collection[int] | None, horizon: date
) -> Select[FollowUpVisit, str, str, str]:
    """Visits still to do whose window opens by ``horizon``, soonest first (at ``site_ids``;
    every site when None): the one definition of what to chase, for ``due`` and the work
    queue (``noim.services.workqueue``)."""
    stmt = (
        select(FollowUpVisit, Child.trial_id, Family.trial_id, Site.code)
        .join(Child, Child.id == FollowUpVisit.child_id)
        .join(Family, Family.id == Child.family_id)
        .join(Site, Site.id == Family.site_id)
        .where(
            FollowUpVisit.status == "scheduled",
            FollowUpVisit.voided_at.is_(None),
            Child.voided_at.is_(None),
            FollowUpVisit.window_start <= horizon,
            _still_followed_up(),
        )
        .order_by(FollowUpVisit.window_end, FollowUpVisit.target_date, Child.trial_id)
    )
    if site_ids is not None:
        stmt = stmt.where(Family.site_id.in_(sorted(site_ids)))
    return stmt


def due_views(
    s: Session, stmt: Select[FollowUpVisit, str, str, str], today: date
) -> list[DueVisit]:
    """The rows of a ``due_statement`` (possibly limited) as ``DueVisit``."""
    return due_rows(s.execute(stmt).tuples(), today)


def due_rows(rows: Iterable[tuple[Any, ...]], today: date) -> list[DueVisit]:
    """Rows of a ``due_statement`` (visit, child, family, site) as ``DueVisit``."""
    return [
        DueVisit(
            child=child,
            family=family,
            site=site_code,
            timepoint=v.timepoint_code,
            target_date=v.target_date,
            window_start=v.window_start,
            window_end=v.window_end,
            status=visit_status(v.status, v.window_start, v.window_end, v.completed_on, today),
            visit_id=v.id,
        )
        for v, child, family, site_code in rows
    ]
