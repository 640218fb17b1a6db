"""Import kind ``intervention``: receipt of the allocated intervention, one row per family.

Columns: ``family_id, received`` and optionally ``started_on`` (required when received),
``reason`` (a code, required when not received) and ``details`` (required for reason
``other``).  The rules are those of ``noim intervention record`` (``ReceiptChecker``).
A family whose live receipt record says the same is skipped (a second import adds
nothing); one whose live record differs is a conflict (IMP-010): correct stored records
one by one with ``noim intervention record --correct REASON``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from noim.db.audit import insert_rows
from noim.db.base import utcnow
from noim.db.models import InterventionReceipt
from noim.domain.roles import Actor
from noim.services.imports.base import ImportContext, KindBase, Plan, resolve_families
from noim.services.imports.reader import Cells, CsvData
from noim.services.intervention import ReceiptChecker, Values, clean


class InterventionKind(KindBase):
    name = "intervention"
    description = (
        "receipt of the allocated intervention, per family (as `noim intervention record`)"
    )
    required: tuple[str, ...] = ("family_id", "received")
    optional: tuple[str, ...] = ("started_on", "reason", "details")

    text_columns: Mapping[str, str] = {"details": "intervention_receipts.details"}

    def plan(self, s: Session, actor: Actor, data: CsvData, ctx: ImportContext) -> Plan:
        cells = Cells(data, ctx.dates, "IMP-005")
        families = resolve_families(s, actor, cells, "family_id", "record its receipt", "RCV-001")
        received = cells.bool_column("received", rule="RCV-011")
        started = cells.date_column("started_on", required=False)
        reasons = [clean(t.lower()) for t in data.column("reason")]
        details = [clean(t) for t in data.column("details")]
        checker = ReceiptChecker(s)
        checker.load(f.id for f in families if f is not None)
        rows: list[dict[str, object]] = []
        seen: dict[int, int] = {}
        unchanged = 0
        now = utcnow()
        for i, fam in enumerate(families):
            if fam is None:
                continue
            got = received[i]
            cells.problems += checker.problems(
                data.record(i),
                family_id=fam.id,
                family_trial_id=fam.trial_id,
                received=got,
                started_on=started[i],
                reason=reasons[i],
                details=details[i],
            )
            if got is None:
                continue
            if fam.id in seen:
                cells.problem(
                    i,
                    "family_id",
                    fam.trial_id,
                    f"one row per family (row {data.line(seen[fam.id])} has the same)",
                    "IMP-011",
                )
                continue
            seen[fam.id] = i
            values: Values = (got, started[i], reasons[i], details[i])
            live = checker.live.get(fam.id)
            if live is not None:
                if live[1] == values:
                    unchanged += 1
                else:
                    cells.problem(
                        i,
                        "received",
                        data.column("received")[i],
                        f"the stored receipt record {live[0]} of {fam.trial_id} "
                        f"({_describe(live[1])}); correct stored data with a reason "
                        "(noim intervention record --correct), not by importing over it",
                        "IMP-010",
                    )
                continue
            rows.append(_row(fam.id, values, now, actor.user_id))

        def write() -> None:
            insert_rows(s, InterventionReceipt, rows)

        return Plan(cells.problems, len(rows), unchanged, write, unit="receipt record")


def _describe(values: Values) -> str:
    received, started_on, reason, details = values
    if received:
        return f"received, started {started_on}"
    return f"not received: {reason}" + (f" ({details})" if details else "")


def _row(family_id: int, values: Values, now: datetime, user_id: int | None) -> dict[str, object]:
    received, started_on, reason, details = values
    return {
        "family_id": family_id,
        "received": received,
        "started_on": started_on,
        "reason": reason,
        "details": details,
        "recorded_at": now,
        "recorded_by_id": user_id,
        "corrects_id": None,
    }


INTERVENTION = InterventionKind()
