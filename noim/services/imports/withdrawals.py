"""Import kind ``withdrawals``: one row per withdrawal of a child.

Columns: ``child_id, withdrawn_on, level, requested_by, reason``.  The rules are those of
``noim child withdraw`` (``withdrawal_problems``: WDR-001 to WDR-003), and so is the side
effect: a withdrawal from follow-up or from use of data marks the child's unfinished
visits whose window had not closed by the withdrawal not required (``end_visits``, the
set-based form of what ``record_withdrawal`` does), with the same status reason.

A row is the same record as a live stored withdrawal of the same child, level and date:
stored with the same requester and reason it is skipped (a second import adds nothing);
stored with other values it is a conflict (IMP-010).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from noim.db.audit import insert_rows
from noim.db.models import Withdrawal
from noim.domain.roles import Actor
from noim.services.consent import ENDS_FOLLOW_UP, withdrawal_problems, withdrawal_why
from noim.services.imports.base import ImportContext, KindBase, Plan, chunks, resolve_children
from noim.services.imports.reader import Cells, CsvData
from noim.services.visits import end_visits

_Key = tuple[int, str, date]
_Values = tuple[str, str]


class WithdrawalsKind(KindBase):
    name = "withdrawals"
    description = "withdrawals of children, ending their follow-up (as `noim child withdraw`)"
    required: tuple[str, ...] = ("child_id", "withdrawn_on", "level", "requested_by", "reason")

    text_columns: Mapping[str, str] = {"reason": "withdrawals.reason"}

    def plan(self, s: Session, actor: Actor, data: CsvData, ctx: ImportContext) -> Plan:
        cells = Cells(data, ctx.dates, "IMP-005")
        children = resolve_children(
            s, actor, cells, "child_id", "record a withdrawal for", "IMP-004"
        )
        dates = cells.date_column("withdrawn_on")
        levels = [t.lower() if t else None for t in cells.text_column("level")]
        requesters = [t.lower() if t else None for t in cells.text_column("requested_by")]
        reasons = cells.text_column("reason")
        ctx.progress("checking withdrawals", 0, data.n_rows)
        stored = _stored(s, [c.id for c in children if c is not None])
        rows: list[dict[str, object]] = []
        ends: dict[int, tuple[date | None, str]] = {}
        seen: dict[_Key, int] = {}
        unchanged = 0
        for i in range(data.n_rows):
            child, on, level, by, reason = (
                children[i],
                dates[i],
                levels[i],
                requesters[i],
                reasons[i],
            )
            if child is None or on is None or level is None or by is None or reason is None:
                continue
            problems = withdrawal_problems(data.record(i), on, level, by, child.entered_care_on)
            if problems:
                cells.problems += problems
                continue
            key = (child.id, level, on)
            if key in seen:
                cells.problem(
                    i,
                    "withdrawn_on",
                    on.isoformat(),
                    f"one row per child, level and date (row {data.line(seen[key])} has the same)",
                    "IMP-011",
                )
                continue
            seen[key] = i
            if key in stored:
                if (by, reason) in stored[key]:
                    unchanged += 1
                else:
                    was_by, was_reason = stored[key][0]
                    cells.problem(
                        i,
                        "reason",
                        reason,
                        f"the stored withdrawal of {child.trial_id} ({level} on {on}: requested "
                        f"by {was_by}, reason {was_reason!r}); void the stored withdrawal with a "
                        "reason to change it, not by importing over it",
                        "IMP-010",
                    )
                continue
            rows.append(
                {
                    "child_id": child.id,
                    "withdrawn_on": on,
                    "level": level,
                    "requested_by": by,
                    "reason": reason,
                }
            )
            if level in ENDS_FOLLOW_UP:
                earlier = ends.get(child.id)
                if earlier is None or (earlier[0] is not None and on < earlier[0]):
                    ends[child.id] = (on, withdrawal_why(level, on, reason))
        ctx.progress("checking withdrawals", data.n_rows, data.n_rows)
        plan = Plan(cells.problems, len(rows), unchanged, unit="withdrawal")

        def write() -> None:
            insert_rows(s, Withdrawal, rows)
            plan.details["visits not required"] = end_visits(s, ends)

        plan.write = write
        return plan


def _stored(s: Session, child_ids: list[int]) -> dict[_Key, list[_Values]]:
    out: dict[_Key, list[_Values]] = {}
    for chunk in chunks(sorted(set(child_ids))):
        for r in s.execute(
            select(
                Withdrawal.child_id,
                Withdrawal.level,
                Withdrawal.withdrawn_on,
                Withdrawal.requested_by,
                Withdrawal.reason,
            ).where(Withdrawal.child_id.in_(chunk), Withdrawal.voided_at.is_(None))
        ):
            out.setdefault((r[0], r[1], r[2]), []).append((r[3], r[4]))
    return out


WITHDRAWALS = WithdrawalsKind()
