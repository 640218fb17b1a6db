"""Import kind ``legal-events``: one row per legal event or court / hearing decision.

Columns: ``child_id, event_type, event_date`` and optionally ``proceedings_kind`` and
``proceedings_started_on`` (together, or neither: IMP-020) naming the proceedings the
event belongs to, and ``notes``.  The rules are those of ``noim legal event`` and
``noim legal proceedings`` (``LegalChecker``): the type and the proceedings kind must be
valid in the child's jurisdiction.

Proceedings are found by child, kind and start date among the child's live proceedings;
when there are none they are created (in the child's site's jurisdiction, no court
named), once however many rows name them.  Two stored proceedings with the same child,
kind and start date make the row ambiguous (IMP-021): link it with
``noim legal event --proceedings ID`` instead.

An event is the same record when child, type and date agree: stored identically (same
proceedings and notes) it is skipped; otherwise it is a conflict (IMP-010).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from noim.db.audit import insert_rows
from noim.db.models import LegalEvent, LegalProceedings, Site
from noim.domain.roles import Actor
from noim.services.imports.base import ImportContext, KindBase, Plan, chunks, resolve_children
from noim.services.imports.reader import Cells, CsvData
from noim.services.legal_rules import LegalChecker

_ProcKey = tuple[int, str, date]  # child id, kind, started on
_EventKey = tuple[int, str, date]  # child id, type code, event date
#: the file's columns for the fields the proceedings rules name
_COLUMNS = {"kind": "proceedings_kind", "started_on": "proceedings_started_on"}


class LegalEventsKind(KindBase):
    name = "legal-events"
    description = "legal events and court / hearing decisions (as `noim legal event`)"
    required: tuple[str, ...] = ("child_id", "event_type", "event_date")
    optional: tuple[str, ...] = ("proceedings_kind", "proceedings_started_on", "notes")

    text_columns: Mapping[str, str] = {"notes": "legal_events.notes"}

    def plan(self, s: Session, actor: Actor, data: CsvData, ctx: ImportContext) -> Plan:
        cells = Cells(data, ctx.dates, "IMP-005")
        children = resolve_children(
            s, actor, cells, "child_id", "record legal events for", "IMP-004"
        )
        type_texts = cells.text_column("event_type")
        dates = cells.date_column("event_date")
        kind_cells = data.column("proceedings_kind")
        start_cells = data.column("proceedings_started_on")
        starts = cells.date_column("proceedings_started_on", required=False)
        notes = [t or None for t in data.column("notes")]
        ctx.progress("checking legal events", 0, data.n_rows)
        checker = LegalChecker(s)
        jurisdiction: dict[int, str] = {}
        for site_id, where in s.execute(select(Site.id, Site.jurisdiction)):
            jurisdiction[site_id] = where
        child_ids = sorted({c.id for c in children if c is not None})
        procs = _stored_proceedings(s, child_ids)
        events = _stored_events(s, child_ids)
        proc_key_of = {pid: key for key, ids in procs.items() for pid in ids}

        new_procs: dict[_ProcKey, dict[str, object]] = {}
        pending: list[tuple[dict[str, object], _ProcKey | None]] = []
        seen: dict[_EventKey, int] = {}
        unchanged = 0
        for i in range(data.n_rows):
            child, on = children[i], dates[i]
            if child is None:
                continue
            record = data.record(i)
            where = jurisdiction[child.site_id]
            before = len(cells.problems)
            code = checker.type_code(type_texts[i])
            cells.problems += checker.event_problems(
                record,
                child_id=child.id,
                jurisdiction=where,
                date_of_birth=child.date_of_birth,
                event_type=code or type_texts[i],
                event_date=on,
                proceedings_id=None,
            )
            kind = kind_cells[i].lower() or None
            if bool(kind_cells[i]) != bool(start_cells[i]):
                empty = "proceedings_started_on" if kind_cells[i] else "proceedings_kind"
                cells.problem(
                    i,
                    empty,
                    "",
                    "both proceedings_kind and proceedings_started_on, or neither",
                    "IMP-020",
                )
            elif kind is not None:
                cells.problems += [
                    replace(p, field=_COLUMNS.get(p.field, p.field))
                    for p in checker.proceedings_problems(
                        record,
                        jurisdiction=where,
                        date_of_birth=child.date_of_birth,
                        kind=kind,
                        started_on=starts[i],
                    )
                ]
            if code is None or on is None or len(cells.problems) > before:
                continue
            pkey: _ProcKey | None = None
            started = starts[i]
            if kind is not None and started is not None:
                pkey = (child.id, kind, started)
                found = procs.get(pkey, [])
                if len(found) > 1:
                    cells.problem(
                        i,
                        "proceedings_kind",
                        kind,
                        f"one stored {kind} of {child.trial_id} from {started} (there are "
                        f"{len(found)}: ids {', '.join(map(str, found))}); record "
                        "this event with `noim legal event --proceedings ID`",
                        "IMP-021",
                    )
                    continue
            key = (child.id, code, on)
            if key in seen:
                cells.problem(
                    i,
                    "event_type",
                    code,
                    f"one row per child, event type and date (row {data.line(seen[key])} "
                    "has the same)",
                    "IMP-011",
                )
                continue
            seen[key] = i
            if key in events:
                stored_proc, stored_notes = events[key]
                stored_pkey = proc_key_of.get(stored_proc) if stored_proc else None
                if (stored_pkey, stored_notes) == (pkey, notes[i]):
                    unchanged += 1
                else:
                    cells.problem(
                        i,
                        "event_type",
                        code,
                        f"the stored {code} of {child.trial_id} on {on} (proceedings "
                        f"{_describe(stored_pkey)}, notes {stored_notes!r}); correct stored "
                        "events with a reason, not by importing over them",
                        "IMP-010",
                    )
                continue
            if pkey is not None and pkey not in procs and pkey not in new_procs:
                new_procs[pkey] = {
                    "child_id": child.id,
                    "jurisdiction": where,
                    "kind": pkey[1],
                    "started_on": pkey[2],
                }
            row: dict[str, object] = {
                "child_id": child.id,
                "event_type_code": code,
                "event_date": on,
                "notes": notes[i],
                "proceedings_id": procs[pkey][0] if pkey is not None and pkey in procs else None,
            }
            pending.append((row, pkey if pkey in new_procs else None))
        ctx.progress("checking legal events", data.n_rows, data.n_rows)

        def write() -> None:
            ids = insert_rows(s, LegalProceedings, list(new_procs.values()))
            made = dict(zip(new_procs, ids, strict=True))
            rows = []
            for row, pkey in pending:
                if pkey is not None:
                    row["proceedings_id"] = made[pkey]
                rows.append(row)
            insert_rows(s, LegalEvent, rows)

        details = {"new proceedings": len(new_procs)} if new_procs else {}
        return Plan(
            cells.problems, len(pending), unchanged, write, unit="legal event", details=details
        )


def _describe(key: _ProcKey | None) -> str:
    return f"{key[1]} from {key[2]}" if key else "none"


def _stored_proceedings(s: Session, child_ids: list[int]) -> dict[_ProcKey, list[int]]:
    out: dict[_ProcKey, list[int]] = {}
    for chunk in chunks(child_ids):
        for pid, child_id, kind, started in s.execute(
            select(
                LegalProceedings.id,
                LegalProceedings.child_id,
                LegalProceedings.kind,
                LegalProceedings.started_on,
            )
            .where(LegalProceedings.child_id.in_(chunk), LegalProceedings.voided_at.is_(None))
            .order_by(LegalProceedings.id)
        ):
            out.setdefault((child_id, kind, started), []).append(pid)
    return out


def _stored_events(
    s: Session, child_ids: list[int]
) -> dict[_EventKey, tuple[int | None, str | None]]:
    out: dict[_EventKey, tuple[int | None, str | None]] = {}
    for chunk in chunks(child_ids):
        for child_id, code, on, pid, notes in s.execute(
            select(
                LegalEvent.child_id,
                LegalEvent.event_type_code,
                LegalEvent.event_date,
                LegalEvent.proceedings_id,
                LegalEvent.notes,
            ).where(LegalEvent.child_id.in_(chunk), LegalEvent.voided_at.is_(None))
        ):
            out[(child_id, code, on)] = (pid, notes)
    return out


LEGAL_EVENTS = LegalEventsKind()
