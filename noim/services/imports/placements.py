"""Import kind ``placements``: one row per placement of a child.

Columns: ``child_id, start_date, placement_type`` and optionally ``end_date, end_reason``
(together, or neither), ``carer_id`` (the carer's noim id) and ``local_authority`` (a
code of the child's site).  The rules are those of ``noim placement add`` / ``end``
(``PlacementChecker``).  A placement is the same record when child and start date agree:
stored identically it is skipped; stored with other values (for example the file ends a
placement that is stored open) it is a conflict (IMP-010): end or correct stored
placements with ``noim placement end`` / ``correct``.  That the placements of a child do
not overlap is checked when the import's unit of work commits (PLC-010).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from noim.db.audit import insert_rows
from noim.db.models import Placement
from noim.domain.roles import Actor
from noim.services.imports.base import ImportContext, KindBase, Plan, chunks, resolve_children
from noim.services.imports.reader import Cells, CsvData
from noim.services.placement_rules import PlacementChecker

_Key = tuple[int, date]
_Values = tuple[date | None, str, str | None, int | None, int | None]


def _lower(values: list[str | None]) -> list[str | None]:
    return [v.lower() if v is not None else None for v in values]


class PlacementsKind(KindBase):
    name = "placements"
    description = "placements of children (as `noim placement add` / `end`)"
    required: tuple[str, ...] = ("child_id", "start_date", "placement_type")
    optional: tuple[str, ...] = ("end_date", "end_reason", "carer_id", "local_authority")

    def plan(self, s: Session, actor: Actor, data: CsvData, ctx: ImportContext) -> Plan:
        cells = Cells(data, ctx.dates, "IMP-005")
        children = resolve_children(s, actor, cells, "child_id", "record placements for", "IMP-004")
        starts = cells.date_column("start_date")
        ends = cells.date_column("end_date", required=False)
        end_cells = data.column("end_date")
        types = _lower(cells.text_column("placement_type"))
        reasons = _lower(cells.text_column("end_reason", required=False))
        carers = cells.int_column("carer_id", required=False, minimum=1)
        las = [t.upper() or None for t in data.column("local_authority")]
        ctx.progress("checking placements", 0, data.n_rows)
        checker = PlacementChecker(s)
        checker.load(carers)
        stored = _stored(s, [c.id for c in children if c is not None])
        rows: list[dict[str, object]] = []
        seen: dict[_Key, int] = {}
        unchanged = 0
        for i in range(data.n_rows):
            child, start, ptype = children[i], starts[i], types[i]
            if child is None:
                continue
            before = len(cells.problems)
            cells.problems += checker.problems(
                data.record(i),
                site_id=child.site_id,
                site_code=child.site_code,
                date_of_birth=child.date_of_birth,
                start_date=start,
                end_date=ends[i],
                placement_type=ptype,
                end_reason=reasons[i],
                carer_id=carers[i],
                local_authority=las[i],
                ended=bool(end_cells[i]),
            )
            if start is None or ptype is None or len(cells.problems) > before:
                continue
            key = (child.id, start)
            if key in seen:
                cells.problem(
                    i,
                    "start_date",
                    start.isoformat(),
                    f"one row per child and start date (row {data.line(seen[key])} has the same)",
                    "IMP-011",
                )
                continue
            seen[key] = i
            values: _Values = (ends[i], ptype, reasons[i], carers[i], checker.la_id(las[i]))
            if key in stored:
                if stored[key] == values:
                    unchanged += 1
                else:
                    old = stored[key]
                    cells.problem(
                        i,
                        "start_date",
                        start.isoformat(),
                        f"the stored placement of {child.trial_id} from {start} (to "
                        f"{old[0] or 'open'}, {old[1]}, end reason {old[2]}, carer {old[3]}, "
                        f"LA {checker.la_codes.get(old[4]) if old[4] else None}); end or correct "
                        "stored placements with a reason, not by importing over them",
                        "IMP-010",
                    )
                continue
            rows.append(
                {
                    "child_id": child.id,
                    "start_date": start,
                    "end_date": values[0],
                    "placement_type": ptype,
                    "end_reason": values[2],
                    "carer_id": values[3],
                    "local_authority_id": values[4],
                }
            )
        ctx.progress("checking placements", data.n_rows, data.n_rows)

        def write() -> None:
            insert_rows(s, Placement, rows)

        return Plan(cells.problems, len(rows), unchanged, write, unit="placement")


def _stored(s: Session, child_ids: list[int]) -> dict[_Key, _Values]:
    out: dict[_Key, _Values] = {}
    for chunk in chunks(sorted(set(child_ids))):
        for r in s.execute(
            select(
                Placement.child_id,
                Placement.start_date,
                Placement.end_date,
                Placement.placement_type,
                Placement.end_reason,
                Placement.carer_id,
                Placement.local_authority_id,
            ).where(Placement.child_id.in_(chunk), Placement.voided_at.is_(None))
        ):
            out[(r[0], r[1])] = (r[2], r[3], r[4], r[5], r[6])
    return out


PLACEMENTS = PlacementsKind()
