"""Import kind ``eligibility``: one row per eligibility decision for a child.

Columns: ``child_id, eligible, decided_on`` and optionally ``reason`` (required when
the child is found ineligible).  The rules are those of ``noim child eligibility``
(``eligibility_problems``: ELG-001, ELG-002).  A child whose stored decision is the
same (status, date and reason) is skipped, so a second import adds nothing; a child
with a different stored decision is a conflict (IMP-010): change a decision with
``noim child eligibility``, which records why.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from noim.db.audit import update_rows
from noim.db.models import Child
from noim.domain.roles import Actor
from noim.services.consent import eligibility_problems
from noim.services.imports.base import ImportContext, KindBase, Plan, chunks, resolve_children
from noim.services.imports.reader import Cells, CsvData

_Decision = tuple[str, date | None, str | None]


class EligibilityKind(KindBase):
    name = "eligibility"
    description = "eligibility decisions for children (as `noim child eligibility`)"
    required: tuple[str, ...] = ("child_id", "eligible", "decided_on")
    optional: tuple[str, ...] = ("reason",)

    text_columns: Mapping[str, str] = {"reason": "children.ineligibility_reason"}

    def plan(self, s: Session, actor: Actor, data: CsvData, ctx: ImportContext) -> Plan:
        cells = Cells(data, ctx.dates, "IMP-005")
        children = resolve_children(
            s, actor, cells, "child_id", "decide the eligibility of", "IMP-004"
        )
        eligible = cells.bool_column("eligible")
        decided = cells.date_column("decided_on")
        reasons = [t.strip() or None for t in data.column("reason")]
        stored = _stored(s, [c.id for c in children if c is not None])
        changes: dict[int, dict[str, object]] = {}
        seen: dict[int, int] = {}
        unchanged = 0
        for i in range(data.n_rows):
            child, ok, on = children[i], eligible[i], decided[i]
            if child is None or ok is None or on is None:
                continue
            problems = eligibility_problems(
                data.record(i), ok, on, child.entered_care_on, reasons[i]
            )
            if problems:
                cells.problems += problems
                continue
            if child.id in seen:
                cells.problem(
                    i,
                    "child_id",
                    child.trial_id,
                    f"one decision per child (row {data.line(seen[child.id])} has one)",
                    "IMP-011",
                )
                continue
            seen[child.id] = i
            decision: _Decision = (
                "eligible" if ok else "ineligible",
                on,
                None if ok else reasons[i],
            )
            old = stored[child.id]
            if old == decision:
                unchanged += 1
            elif old[0] != "pending":
                cells.problem(
                    i,
                    "eligible",
                    data.column("eligible")[i],
                    f"the stored decision for {child.trial_id} ({old[0]} on {old[1]}"
                    + (f": {old[2]}" if old[2] else "")
                    + "); change a decision with `noim child eligibility` and a reason, "
                    "not by importing over it",
                    "IMP-010",
                )
            else:
                changes[child.id] = {
                    "eligibility_status": decision[0],
                    "eligibility_decided_on": on,
                    "ineligibility_reason": decision[2],
                }

        def write() -> None:
            update_rows(s, Child, changes, reread=False)

        return Plan(cells.problems, len(changes), unchanged, write, unit="eligibility decision")


def _stored(s: Session, child_ids: list[int]) -> dict[int, _Decision]:
    out: dict[int, _Decision] = {}
    for chunk in chunks(sorted(set(child_ids))):
        for cid, status, on, reason in s.execute(
            select(
                Child.id,
                Child.eligibility_status,
                Child.eligibility_decided_on,
                Child.ineligibility_reason,
            ).where(Child.id.in_(chunk))
        ):
            out[int(cid)] = (str(status), on, reason)
    return out


ELIGIBILITY = EligibilityKind()
