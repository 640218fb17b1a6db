"""Bulk import of CSV files: atomic, idempotent, every bad row reported.

``run_import(db, actor, kind, path)`` reads the file (UTF-8, with or without BOM),
checks its columns, lets the kind validate every row set-based and work out what is
new, and writes the new records in ONE audited unit of work.  When any row is bad
nothing is written and ``ImportRejected`` lists every problem (row, column, value,
rule).  Cells are checked against the text rules first (``cell_text``): a file with a
control character in a cell is refused before its rows are checked further; a cell
longer than the column it is stored in is reported with the other problems.
``dry_run`` validates and counts without writing.  Importing the same file twice adds
nothing the second time; a row that conflicts with stored data is a problem, never a
silent overwrite.  Imports run one at a time (``noim.db.locks.Lock.IMPORTS``, taken
before the first read), so two processes importing the same file at the same moment
store it once: the second finds every row already stored.  Formats:
docs/import-formats.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from noim.db import locks
from noim.db.session import Database
from noim.domain.exceptions import (
    ImportRejected,
    NotFound,
    PermissionDenied,
    Problem,
    ValidationError,
)
from noim.domain.roles import Actor, Capability
from noim.domain.text import CONTROL_RULE
from noim.services.imports.base import ImportContext, ImportKind, Plan, Progress
from noim.services.imports.cell_text import cell_problems
from noim.services.imports.reader import CsvData, date_style, ragged_problems, read_csv

#: the kinds' names, for the command line without loading the kinds (some load pandas);
#: tests/test_import.py checks it is ``kinds()``'s keys
KIND_NAMES = (
    "assessments",
    "consents",
    "deviations",
    "eligibility",
    "families",
    "intervention",
    "legal-events",
    "placements",
    "saes",
    "screening",
    "service-use",
    "visits",
    "withdrawals",
)


def kinds() -> dict[str, ImportKind]:
    """Every import kind by name (imported here, not at module load, to keep start-up light)."""
    from noim.services.imports.assessments import ASSESSMENTS
    from noim.services.imports.consents import CONSENTS
    from noim.services.imports.eligibility import ELIGIBILITY
    from noim.services.imports.families import FAMILIES
    from noim.services.imports.intervention import INTERVENTION
    from noim.services.imports.legal import LEGAL_EVENTS
    from noim.services.imports.placements import PLACEMENTS
    from noim.services.imports.safety import DEVIATIONS, SAES
    from noim.services.imports.screening import SCREENING
    from noim.services.imports.service_use import SERVICE_USE
    from noim.services.imports.visits import VISITS
    from noim.services.imports.withdrawals import WITHDRAWALS

    found: list[ImportKind] = [
        FAMILIES,
        SCREENING,
        ELIGIBILITY,
        CONSENTS,
        ASSESSMENTS,
        PLACEMENTS,
        LEGAL_EVENTS,
        VISITS,
        INTERVENTION,
        SERVICE_USE,
        WITHDRAWALS,
        SAES,
        DEVIATIONS,
    ]
    return {k.name: k for k in found}


@dataclass(frozen=True)
class ImportReport:
    kind: str
    source: str
    sha256: str
    rows: int
    unit: str
    new_records: int
    unchanged_records: int
    dry_run: bool
    written: bool
    details: dict[str, int] = field(default_factory=dict)
    #: trial IDs allocated (or already stored) by the file's family reference (families kind)
    family_ids: dict[str, str] = field(default_factory=dict)
    #: children's trial IDs by row, e.g. ``{"row 2": "G-0001-01-O"}`` (families kind)
    child_ids: dict[str, str] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        if self.new_records == 0 and self.unchanged_records:
            return (
                f"nothing new: all {self.unchanged_records} {self.unit}(s) in {self.source} "
                "are already stored"
            )
        verb = "would add" if self.dry_run else "added"
        tail = f"; {self.unchanged_records} already stored" if self.unchanged_records else ""
        extra = "".join(f", {n} {what}" for what, n in self.details.items())
        return (
            f"{verb} {self.new_records} {self.unit}(s){extra} from {self.rows} row(s) "
            f"of {self.source}{tail}" + (" (dry run: nothing written)" if self.dry_run else "")
        )


def _at_rows(data: CsvData, p: Problem) -> Problem:
    """A problem found by a rule at commit, named by the file rows of its child, when it has some."""
    if p.subject is None or "child_id" not in data.columns:
        return p
    lines = [data.line(i) for i, t in enumerate(data.columns["child_id"]) if t.upper() == p.subject]
    if not lines:
        return p
    where = f"row {lines[0]}" if len(lines) == 1 else "rows " + ", ".join(map(str, lines))
    return replace(p, record=where, expected=f"{p.expected} (found in {p.record})")


#: the progress stage shown while another import holds the imports lock (PostgreSQL)
WAITING = "waiting for another import to finish"


class _DryRun(Exception):
    """Raised inside the unit of work to roll a dry run back."""


#: import kinds whose rows reveal the allocated arm: never run by a blinded role
ARM_REVEALING_KINDS = frozenset({"intervention"})


def may_import(actor: Actor, kind: str, importer: ImportKind) -> bool:
    """Whether ``actor`` may run import ``kind``: the kind's own write capability, or the data
    manager's ``import_data`` for every kind that does not reveal the arm."""
    if kind in ARM_REVEALING_KINDS and not actor.can(Capability.SEE_ARM):
        return False
    return actor.can(importer.capability) or actor.can(Capability.IMPORT_DATA)


def require_may_import(actor: Actor, kind: str, importer: ImportKind) -> None:
    if not may_import(actor, kind, importer):
        why = (
            "it reveals the allocated arm and the role is blinded"
            if kind in ARM_REVEALING_KINDS and not actor.can(Capability.SEE_ARM)
            else f"the {actor.role.value} role lacks '{importer.capability.value}'"
        )
        raise PermissionDenied(f"{actor.describe()} may not import {kind}: {why}")


#: an import writing at least this many records refreshes the query planner's statistics
STATISTICS_AFTER = 1000


def run_import(
    db: Database,
    actor: Actor,
    kind: str,
    path: Path | str,
    *,
    dry_run: bool = False,
    dates: str | None = None,
    progress: Progress | None = None,
    text: str | None = None,
) -> ImportReport:
    """Import ``path`` as ``kind`` (see the module docstring); ``text`` replaces the file's content."""
    available = kinds()
    importer = available.get(kind)
    if importer is None:
        raise NotFound(f"no import kind {kind!r}; expected one of {', '.join(sorted(available))}")
    require_may_import(actor, kind, importer)
    try:
        data = read_csv(path, text=text)
        style = date_style(data, dates)
    except (OSError, ValueError) as exc:
        raise ImportRejected(str(path), [Problem(str(path), "", "", "IMP-001", str(exc))]) from None
    problems = [
        Problem(data.source, "header", ",".join(data.header), "IMP-002", p)
        for p in importer.columns_ok(data.header)
    ]
    if problems:
        raise ImportRejected(data.source, problems)
    problems = ragged_problems(data, "IMP-003")
    # the text rules first: a cell with a control character (a NUL cannot even be looked
    # up on PostgreSQL) stops the import here; an over-long cell is reported with the rows'
    # other problems, unless the kind's own rules already named that cell
    text_problems = cell_problems(data, importer.text_columns)
    if any(p.rule == CONTROL_RULE for p in text_problems):
        raise ImportRejected(data.source, problems + text_problems)
    ctx = ImportContext(dates=style, progress=progress or ImportContext().progress)
    reason = f"import of {kind} from {Path(data.source).name} (sha256 {data.sha256[:12]})"
    plan: Plan | None = None
    try:
        waited: list[bool] = []

        def on_wait() -> None:
            waited.append(True)
            ctx.progress(WAITING, 0, 1)

        # the unit of work waits for any other writer (Database.write), then for any other
        # import, before it reads anything: every read below sees what they stored
        with db.write(actor, reason=reason, on_wait=on_wait) as s:
            if locks.hold(s, locks.Lock.IMPORTS, on_wait=on_wait) or waited:
                ctx.progress(WAITING, 1, 1)
            plan = importer.plan(s, actor, data, ctx)
            problems += plan.problems
            named = {(p.record, p.field) for p in plan.problems}
            problems += [p for p in text_problems if (p.record, p.field) not in named]
            if problems:
                raise ImportRejected(data.source, problems)
            if dry_run:
                raise _DryRun
            if plan.new_records:
                plan.write()
    except _DryRun:
        pass
    except ValidationError as exc:  # a cross-record rule checked when the unit of work ends
        raise ImportRejected(data.source, [_at_rows(data, p) for p in exc.problems]) from None
    assert plan is not None
    if not dry_run and plan.new_records >= STATISTICS_AFTER:
        db.refresh_statistics()  # the planner's view of the tables it just grew
    return ImportReport(
        kind=kind,
        source=data.source,
        sha256=data.sha256,
        rows=data.n_rows,
        unit=plan.unit,
        new_records=plan.new_records,
        unchanged_records=plan.unchanged_records,
        dry_run=dry_run,
        written=not dry_run and plan.new_records > 0,
        details=plan.details,
        family_ids=plan.family_ids,
        child_ids=plan.child_ids,
    )


__all__ = ["ImportContext", "ImportKind", "ImportReport", "Plan", "kinds", "run_import"]
