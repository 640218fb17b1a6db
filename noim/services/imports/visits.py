"""Import kind ``visits``: outcomes of follow-up visits (completed, missed, not required).

Columns: ``child_id, timepoint, outcome`` and, as the outcome needs, ``date`` (the day
a completed visit took place) and ``reason`` (why a visit was missed or is not
required).  Visits are scheduled by noim at randomisation; the import records what
happened to them with the rules of `noim visit complete | missed | not-required`
(``completion_problems`` in noim/services/visits.py).  A visit whose stored outcome and
date already match the row is unchanged; one with a different outcome is a conflict
(IMP-010: reopen it with a reason first).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from noim.db.audit import update_rows
from noim.db.base import utcnow
from noim.db.models import Allocation, Child, FollowUpVisit, TimepointRow
from noim.domain.roles import Actor
from noim.services.imports.base import ImportContext, KindBase, Plan, chunks, resolve_children
from noim.services.imports.reader import Cells, CsvData
from noim.services.visits import after_today, completion_problems

OUTCOMES = ("completed", "missed", "not_required")


class VisitsKind(KindBase):
    name = "visits"
    description = (
        "outcomes of scheduled follow-up visits (as `noim visit complete|missed|not-required`)"
    )
    required: tuple[str, ...] = ("child_id", "timepoint", "outcome")
    optional: tuple[str, ...] = ("date", "reason")

    text_columns: Mapping[str, str] = {"reason": "followup_visits.status_reason"}

    def plan(self, s: Session, actor: Actor, data: CsvData, ctx: ImportContext) -> Plan:
        cells = Cells(data, ctx.dates, "IMP-005")
        children = resolve_children(s, actor, cells, "child_id", "record a visit of", "IMP-004")
        timepoints = cells.text_column("timepoint")
        outcomes = cells.code_column("outcome", OUTCOMES)
        dates = cells.date_column("date", required=False)
        reasons = cells.text_column("reason", required=False)
        visits = _visits(s, [c.id for c in children if c is not None])
        baseline = s.scalar(select(TimepointRow.code).order_by(TimepointRow.sort_order).limit(1))
        today, now = utcnow().date(), utcnow()
        changes: dict[int, dict[str, Any]] = {}
        seen: dict[int, int] = {}
        unchanged = 0
        for i in range(data.n_rows):
            child, tp, outcome = children[i], timepoints[i], outcomes[i]
            on, reason = dates[i], reasons[i]
            if outcome == "completed" and on is None and data.column("date")[i] == "":
                cells.problem(i, "date", "", "the date the visit took place", "IMP-005")
            if outcome in ("missed", "not_required") and reason is None:
                cells.problem(i, "reason", "", f"why the visit is {outcome.replace('_', ' ')}")
            if child is None or tp is None or outcome is None:
                continue
            v = visits.get((child.id, tp))
            record = data.record(i)
            if v is None:
                have = ", ".join(t for (c, t) in sorted(visits) if c == child.id)
                cells.problem(
                    i,
                    "timepoint",
                    tp,
                    f"one of {child.trial_id}'s scheduled timepoints ({have or 'none: not randomised'})",
                    "VIS-001",
                )
                continue
            if v.id in seen:
                cells.problem(
                    i,
                    "timepoint",
                    tp,
                    f"one row per visit (row {data.line(seen[v.id])} has it)",
                    "IMP-011",
                )
                continue
            seen[v.id] = i
            if v.status != "scheduled":
                if v.status == outcome and (outcome != "completed" or v.completed_on == on):
                    unchanged += 1
                else:
                    stored = f"{v.status}" + (f" on {v.completed_on}" if v.completed_on else "")
                    cells.problem(
                        i,
                        "outcome",
                        outcome,
                        f"the stored outcome of {child.trial_id} at {tp} ({stored}); reopen the "
                        "visit with a reason (noim visit reopen) before recording another",
                        "IMP-010",
                    )
                continue
            if outcome == "completed":
                if on is None:
                    continue
                randomised_on = v.randomised_at.date() if v.randomised_at is not None else None
                found = completion_problems(
                    record,
                    on,
                    child.date_of_birth,
                    False,
                    v.anchor_date,
                    randomised_on,
                    tp != baseline,
                )
                found += [] if on <= today else [after_today(record, on, today)]
                cells.problems += [_at_date(p) for p in found]
                changes[v.id] = {
                    "status": "completed",
                    "completed_on": on,
                    "status_reason": None,
                    "completed_at": now,
                }
                continue
            if outcome == "missed" and today < v.window_start:
                cells.problem(
                    i,
                    "outcome",
                    outcome,
                    f"a visit whose window has opened (it opens on {v.window_start}; before "
                    "then it can only be not required)",
                    "VIS-008",
                )
                continue
            changes[v.id] = {"status": outcome, "status_reason": reason, "completed_at": now}

        def write() -> None:
            update_rows(s, FollowUpVisit, changes)

        return Plan(cells.problems, len(changes), unchanged, write, unit="visit")


def _at_date(p: Any) -> Any:
    """Completion problems name the visit's ``completed_on``: the file's column is ``date``."""
    return replace(p, field="date")


def _visits(s: Session, child_ids: list[int]) -> dict[tuple[int, str], Any]:
    out: dict[tuple[int, str], Any] = {}
    for chunk in chunks(sorted(set(child_ids))):
        rows = s.execute(
            select(
                FollowUpVisit.id,
                FollowUpVisit.child_id,
                FollowUpVisit.timepoint_code,
                FollowUpVisit.anchor_date,
                FollowUpVisit.window_start,
                FollowUpVisit.status,
                FollowUpVisit.completed_on,
                Allocation.randomised_at,
            )
            .join(Child, Child.id == FollowUpVisit.child_id)
            .outerjoin(Allocation, Allocation.family_id == Child.family_id)
            .where(FollowUpVisit.child_id.in_(chunk), FollowUpVisit.voided_at.is_(None))
        )
        out.update(((r.child_id, r.timepoint_code), r) for r in rows)
    return out


VISITS = VisitsKind()
