"""What every import kind provides, and the look-ups they share.

An import kind (``families``, ``consents``, ``assessments`` ...) is an object with a
``name``, the ``required`` and ``optional`` columns of its CSV format, the capability it
needs, and ``plan(s, actor, data, ctx) -> Plan``: it parses and validates EVERY row
set-based (a handful of queries whatever the file's size), reports every problem with
its row number, column, value and rule, works out which rows are already stored
(identical: skipped, so a second import adds nothing; different: a problem, never a
silent overwrite), and returns a ``write`` step that inserts the new rows with
``noim.db.audit.insert_rows`` (bulk, audited).  ``noim.services.imports.run_import``
calls ``write`` only when there is no problem and it is not a dry run, inside one unit
of work: a rejected import writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from noim.db.models import Child, Family, Site
from noim.domain import trial_ids
from noim.domain.exceptions import Problem
from noim.domain.roles import Actor, Capability
from noim.services.imports.reader import Cells, CsvData

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: called by kinds as they go (a progress bar listens)."""

_CHUNK = 900  # values per IN (...) list (SQLite allows 999 parameters by default)


def _no_progress(_stage: str, _done: int, _total: int) -> None:
    return None


@dataclass
class ImportContext:
    """What a kind may need besides the file: the date style and a progress callback."""

    dates: str = "iso"
    progress: Progress = _no_progress


@dataclass
class Plan:
    """The outcome of validating a file: problems, counts, and the step that writes."""

    problems: list[Problem] = field(default_factory=list)
    #: records the file would add (rows for long formats may group into fewer records)
    new_records: int = 0
    #: records already stored exactly as in the file
    unchanged_records: int = 0
    write: Callable[[], None] = lambda: None
    #: what a record is, for the report ("assessment", "child", ...)
    unit: str = "record"
    #: extra counts for the report, e.g. {"item responses": 1000000}
    details: dict[str, int] = field(default_factory=dict)
    #: trial IDs of the families in the file (new or already stored) by the file's reference
    family_ids: dict[str, str] = field(default_factory=dict)
    #: trial IDs of the children in the file (new or already stored) by row ("row 2")
    child_ids: dict[str, str] = field(default_factory=dict)


class ImportKind(Protocol):
    name: str
    description: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    capability: Capability
    #: CSV column -> ``"table.column"`` for the cells stored as text as given (free text,
    #: references, versions): the text rules apply that column's limit to them
    #: (``noim.services.imports.cell_text``); every other cell is single-line text
    text_columns: Mapping[str, str]

    def columns_ok(self, header: Sequence[str]) -> list[str]:
        """Header problems (missing required columns, unknown columns); empty when fine."""
        ...

    def plan(self, s: Session, actor: Actor, data: CsvData, ctx: ImportContext) -> Plan: ...


class KindBase:
    """Column checking shared by the kinds: every required column present, no unknown column."""

    name: str = ""
    description: str = ""
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    capability: Capability = Capability.WRITE_TRIAL_DATA
    text_columns: Mapping[str, str] = {}

    def columns_ok(self, header: Sequence[str]) -> list[str]:
        out = []
        missing = [c for c in self.required if c not in header]
        if missing:
            out.append(f"missing column(s) {', '.join(missing)}")
        known = set(self.required) | set(self.optional)
        unknown = [h for h in header if h and h not in known]
        if unknown:
            out.append(
                f"unknown column(s) {', '.join(unknown)}; the {self.name} format has "
                + ", ".join((*self.required, *self.optional))
            )
        return out


# --------------------------------------------------------------------------- shared look-ups


def chunks(values: Sequence[object], size: int = _CHUNK) -> Iterable[Sequence[object]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


@dataclass(frozen=True)
class ChildRef:
    id: int
    trial_id: str
    family_id: int
    family_trial_id: str
    site_id: int
    site_code: str
    date_of_birth: date
    entered_care_on: date
    voided: bool


def resolve_children(
    s: Session, actor: Actor, cells: Cells, column: str, action: str, rule: str
) -> list[ChildRef | None]:
    """Every row's child from the trial IDs in ``column``: one query per 900 distinct IDs.

    Adds a problem (with ``rule``) for a malformed ID (check character), an unknown child,
    a voided child, and a child at a site ``actor`` may not ``action``.
    """
    texts = [t.strip().upper() for t in cells.data.column(column)]
    distinct = sorted({t for t in texts if t})
    valid = [t for t in distinct if trial_ids.is_valid(t)]
    found: dict[str, ChildRef] = {}
    for chunk in chunks(valid):
        stmt = (
            select(
                Child.id,
                Child.trial_id,
                Child.family_id,
                Family.trial_id,
                Family.site_id,
                Site.code,
                Child.date_of_birth,
                Child.entered_care_on,
                Child.voided_at,
            )
            .join(Family, Family.id == Child.family_id)
            .join(Site, Site.id == Family.site_id)
            .where(Child.trial_id.in_(chunk))
        )
        for r in s.execute(stmt):
            found[r[1]] = ChildRef(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8] is not None)
    out: list[ChildRef | None] = []
    for i, t in enumerate(texts):
        if not t:
            cells.problem(i, column, "", "a child trial ID (the cell is empty)", rule)
            out.append(None)
            continue
        ref = found.get(t)
        if ref is None:
            expected = (
                "the trial ID of a registered child"
                if trial_ids.is_valid(t)
                else "a child trial ID with a valid check character, such as G-0001-01-7"
            )
            cells.problem(i, column, cells.data.column(column)[i], expected, rule)
            out.append(None)
        elif not actor.can_see_site(ref.site_id):
            cells.problem(
                i,
                column,
                t,
                f"a child at your site(s) ({', '.join(sorted(actor.site_codes))}); "
                f"{t} is at {ref.site_code} and you may not {action} it",
                rule,
            )
            out.append(None)
        elif ref.voided:
            cells.problem(i, column, t, "a child whose record is not voided", rule)
            out.append(None)
        else:
            out.append(ref)
    return out


@dataclass(frozen=True)
class FamilyRef:
    id: int
    trial_id: str
    site_id: int
    site_code: str


def resolve_families(
    s: Session,
    actor: Actor,
    cells: Cells,
    column: str,
    action: str,
    rule: str,
    voided_rule: str | None = None,
) -> list[FamilyRef | None]:
    """Every row's family from the trial IDs in ``column``: one query per 900 distinct IDs.

    As ``resolve_children``: a problem (with ``rule``) for an empty cell, a malformed ID
    (check character), an unknown family and a family at a site ``actor`` may not
    ``action``; a voided family is ``voided_rule`` (default ``rule``).
    """
    texts = [t.strip().upper() for t in cells.data.column(column)]
    valid = sorted({t for t in texts if t and trial_ids.is_valid(t)})
    found: dict[str, tuple[FamilyRef, bool]] = {}
    for chunk in chunks(valid):
        for fid, trial_id, site_id, code, voided_at in s.execute(
            select(Family.id, Family.trial_id, Family.site_id, Site.code, Family.voided_at)
            .join(Site, Site.id == Family.site_id)
            .where(Family.trial_id.in_(chunk))
        ):
            ref = FamilyRef(int(fid), str(trial_id), int(site_id), str(code))
            found[ref.trial_id] = (ref, voided_at is not None)
    out: list[FamilyRef | None] = []
    for i, t in enumerate(texts):
        hit = found.get(t)
        if not t:
            cells.problem(i, column, "", "a family trial ID (the cell is empty)", rule)
        elif hit is None:
            expected = (
                "the trial ID of a registered family"
                if trial_ids.is_valid(t)
                else "a family trial ID with a valid check character, such as G-0001-X"
            )
            cells.problem(i, column, cells.data.column(column)[i], expected, rule)
        elif not actor.can_see_site(hit[0].site_id):
            cells.problem(
                i,
                column,
                t,
                f"a family at your site(s) ({', '.join(sorted(actor.site_codes))}); "
                f"{t} is at {hit[0].site_code} and you may not {action}",
                rule,
            )
        elif hit[1]:
            cells.problem(i, column, t, "a family whose record is not voided", voided_rule or rule)
        else:
            out.append(hit[0])
            continue
        out.append(None)
    return out
