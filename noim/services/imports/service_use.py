"""Import kind ``service-use``: one row per service a child used over a period.

Columns: ``child_id, unit_cost, period_start, period_end, quantity`` and optionally
``source``.  The rules are those of ``noim service-use add`` (``service_use_problems``:
SRV-007 to SRV-011, SRV-013).  A row is the same record as a live stored one of the same
child, unit cost and period: stored with the same quantity and source it is skipped (a
second import adds nothing); stored with other values it is a conflict (IMP-010).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.orm import Session

from noim.db.audit import insert_rows
from noim.db.models import ServiceUse, UnitCost
from noim.domain.roles import Actor, Capability
from noim.services.economics import CENT, service_use_problems, unrecordable
from noim.services.imports.base import ImportContext, KindBase, Plan, chunks, resolve_children
from noim.services.imports.reader import Cells, CsvData

_Key = tuple[int, int, date, date]
_Values = tuple[Decimal, str | None]


class ServiceUseKind(KindBase):
    name = "service-use"
    description = "children's service use, costed by unit costs (as `noim service-use add`)"
    required: tuple[str, ...] = ("child_id", "unit_cost", "period_start", "period_end", "quantity")
    optional: tuple[str, ...] = ("source",)
    capability = Capability.WRITE_ASSESSMENTS

    text_columns: Mapping[str, str] = {"source": "service_use.source"}

    def plan(self, s: Session, actor: Actor, data: CsvData, ctx: ImportContext) -> Plan:
        cells = Cells(data, ctx.dates, "IMP-005")
        children = resolve_children(s, actor, cells, "child_id", "record service use of", "IMP-004")
        codes = [t.strip().lower() for t in data.column("unit_cost")]
        starts = cells.date_column("period_start")
        ends = cells.date_column("period_end")
        quantities = _decimals(cells, "quantity")
        sources = [t.strip() or None for t in data.column("source")]
        costs = {str(code): int(cid) for code, cid in s.execute(select(UnitCost.code, UnitCost.id))}
        forbidden = unrecordable(s, actor)
        ctx.progress("checking service use", 0, data.n_rows)
        stored = _stored(s, [c.id for c in children if c is not None])
        rows: list[dict[str, object]] = []
        seen: dict[_Key, int] = {}
        unchanged = 0
        for i in range(data.n_rows):
            child, start, end, quantity = children[i], starts[i], ends[i], quantities[i]
            if child is None or start is None or end is None or quantity is None:
                continue
            problems = service_use_problems(
                data.record(i),
                data.column("unit_cost")[i],
                costs,
                quantity,
                start,
                end,
                child.date_of_birth,
                sources[i],
                forbidden,
            )
            if problems:
                cells.problems += problems
                continue
            key = (child.id, costs[codes[i]], start, end)
            if key in seen:
                cells.problem(
                    i,
                    "period_start",
                    start.isoformat(),
                    "one row per child, unit cost and period "
                    f"(row {data.line(seen[key])} has the same)",
                    "IMP-011",
                )
                continue
            seen[key] = i
            values = (quantity.quantize(CENT), sources[i])
            if key in stored:
                if values in stored[key]:
                    unchanged += 1
                else:
                    q, src = stored[key][0]
                    cells.problem(
                        i,
                        "quantity",
                        data.column("quantity")[i],
                        f"the stored service use of {child.trial_id} ({codes[i]} from {start} "
                        f"to {end}: quantity {q}, source {src}); correct or void stored service "
                        "use with a reason, not by importing over it",
                        "IMP-010",
                    )
                continue
            rows.append(
                {
                    "child_id": child.id,
                    "unit_cost_id": key[1],
                    "period_start": start,
                    "period_end": end,
                    "quantity": values[0],
                    "source": values[1],
                }
            )
        ctx.progress("checking service use", data.n_rows, data.n_rows)

        def write() -> None:
            insert_rows(s, ServiceUse, rows)

        return Plan(cells.problems, len(rows), unchanged, write, unit="service use")


def _decimals(cells: Cells, column: str) -> list[Decimal | None]:
    out: list[Decimal | None] = []
    for i, text in enumerate(cells.data.column(column)):
        if not text:
            cells.problem(i, column, "", "a number (the cell is empty)")
            out.append(None)
            continue
        try:
            value = Decimal(text)
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite():
            cells.problem(i, column, text, "a number such as 2.5")
            out.append(None)
        else:
            out.append(value)
    return out


def _stored(s: Session, child_ids: list[int]) -> dict[_Key, list[_Values]]:
    out: dict[_Key, list[_Values]] = {}
    for chunk in chunks(sorted(set(child_ids))):
        for r in s.execute(
            select(
                ServiceUse.child_id,
                ServiceUse.unit_cost_id,
                ServiceUse.period_start,
                ServiceUse.period_end,
                ServiceUse.quantity,
                ServiceUse.source,
            ).where(ServiceUse.child_id.in_(chunk), ServiceUse.voided_at.is_(None))
        ):
            out.setdefault((r[0], r[1], r[2], r[3]), []).append(
                (Decimal(r[4]).quantize(CENT), r[5])
            )
    return out


SERVICE_USE = ServiceUseKind()
