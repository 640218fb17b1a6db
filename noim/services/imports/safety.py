"""Import kinds ``saes`` (serious adverse events) and ``deviations`` (protocol deviations).

``saes``: one row per SAE of a child.  Columns ``child_id, onset_date, reported_on,
category, description`` and optionally ``relatedness``, ``expected`` (yes/no), ``outcome``
and ``complete`` (yes/no, default no: yes records the report as complete, as
``noim sae complete``).  The rules are those of ``noim sae add`` (``sae_problems``:
SAE-001 to SAE-007) and ``noim sae complete`` (``completion_problems``: SAE-009).  A row
is the same record as a live stored SAE of the same child, onset date and category:
stored with the same values it is skipped; with other values it is a conflict (IMP-010).
Nothing here (nor in the report of an import) shows an arm.

``deviations``: one row per protocol deviation of a family.  Columns ``family_id,
occurred_on, category, severity, description`` and optionally ``child_id`` (a child of
the family the deviation concerns).  The rules are those of ``noim deviation add``
(``deviation_problems``: DEV-001 to DEV-007); the family must be registered and at one
of your sites (IMP-090).  A row is the same record as a live stored deviation of the
same family, date and category: stored with the same severity, description and child it
is skipped; with other values it is a conflict (IMP-010).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from noim.db.audit import insert_rows
from noim.db.base import utcnow
from noim.db.models import ProtocolDeviation, SeriousAdverseEvent
from noim.domain.roles import Actor
from noim.services.imports.base import (
    ChildRef,
    ImportContext,
    KindBase,
    Plan,
    chunks,
    resolve_children,
    resolve_families,
)
from noim.services.imports.reader import Cells, CsvData
from noim.services.safety import (
    completion_problems,
    deviation_earliest,
    deviation_problems,
    eldest_births,
    sae_problems,
)

# --------------------------------------------------------------------------- SAEs

_SaeKey = tuple[int, date, str]
#: reported_on, description, relatedness, expected, outcome, complete
_SaeValues = tuple[date, str, str | None, bool | None, str | None, bool]


class SaesKind(KindBase):
    name = "saes"
    description = "serious adverse events of children (as `noim sae add` / `complete`)"
    required: tuple[str, ...] = ("child_id", "onset_date", "reported_on", "category", "description")
    optional: tuple[str, ...] = ("relatedness", "expected", "outcome", "complete")

    text_columns: Mapping[str, str] = {"description": "serious_adverse_events.description"}

    def plan(self, s: Session, actor: Actor, data: CsvData, ctx: ImportContext) -> Plan:
        cells = Cells(data, ctx.dates, "IMP-005")
        children = resolve_children(s, actor, cells, "child_id", "record an SAE for", "IMP-004")
        onsets = cells.date_column("onset_date")
        reports = cells.date_column("reported_on")
        categories = _lower(cells.text_column("category"))
        descriptions = cells.text_column("description")
        relatedness = _lower(cells.text_column("relatedness", required=False))
        expected = cells.bool_column("expected", required=False)
        outcomes = _lower(cells.text_column("outcome", required=False))
        complete = cells.bool_column("complete", required=False)
        ctx.progress("checking SAEs", 0, data.n_rows)
        stored = _stored_saes(s, [c.id for c in children if c is not None])
        now = utcnow()
        rows: list[dict[str, object]] = []
        seen: dict[_SaeKey, int] = {}
        unchanged = 0
        for i in range(data.n_rows):
            child, onset, reported = children[i], onsets[i], reports[i]
            category, description = categories[i], descriptions[i]
            if child is None or onset is None or reported is None:
                continue
            if category is None or description is None:
                continue
            record = data.record(i)
            values = {
                "onset_date": onset,
                "reported_on": reported,
                "category": category,
                "description": description,
                "relatedness": relatedness[i],
                "expected": expected[i],
                "outcome": outcomes[i],
            }
            problems = sae_problems(record, child.date_of_birth, values)
            done = bool(complete[i])
            if done:
                problems += completion_problems(record, relatedness[i], expected[i], outcomes[i])
            if problems:
                cells.problems += problems
                continue
            key = (child.id, onset, category)
            if key in seen:
                cells.problem(
                    i,
                    "onset_date",
                    onset.isoformat(),
                    "one row per child, onset date and category "
                    f"(row {data.line(seen[key])} has the same)",
                    "IMP-011",
                )
                continue
            seen[key] = i
            row_values: _SaeValues = (
                reported,
                description,
                relatedness[i],
                expected[i],
                outcomes[i],
                done,
            )
            if key in stored:
                if row_values in stored[key]:
                    unchanged += 1
                else:
                    cells.problem(
                        i,
                        "description",
                        description,
                        f"the stored SAE of {child.trial_id} ({category} from {onset}: "
                        f"{_describe(stored[key][0])}); update or complete it with "
                        "`noim sae update` / `noim sae complete`, not by importing over it",
                        "IMP-010",
                    )
                continue
            rows.append(
                {
                    "child_id": child.id,
                    **values,
                    "completed_at": now if done else None,
                }
            )
        ctx.progress("checking SAEs", data.n_rows, data.n_rows)

        def write() -> None:
            insert_rows(s, SeriousAdverseEvent, rows)

        return Plan(cells.problems, len(rows), unchanged, write, unit="SAE")


def _describe(v: _SaeValues) -> str:
    reported, description, related, expected, outcome, done = v
    return (
        f"reported on {reported}, {description!r}, relatedness {related}, expected {expected}, "
        f"outcome {outcome}, {'complete' if done else 'not complete'}"
    )


def _lower(values: list[str | None]) -> list[str | None]:
    return [None if v is None else v.lower() for v in values]


def _stored_saes(s: Session, child_ids: list[int]) -> dict[_SaeKey, list[_SaeValues]]:
    out: dict[_SaeKey, list[_SaeValues]] = {}
    e = SeriousAdverseEvent
    for chunk in chunks(sorted(set(child_ids))):
        for r in s.execute(
            select(
                e.child_id,
                e.onset_date,
                e.category,
                e.reported_on,
                e.description,
                e.relatedness,
                e.expected,
                e.outcome,
                e.completed_at,
            ).where(e.child_id.in_(chunk), e.voided_at.is_(None))
        ):
            out.setdefault((r[0], r[1], r[2]), []).append(
                (r[3], r[4], r[5], r[6], r[7], r[8] is not None)
            )
    return out


SAES = SaesKind()

# --------------------------------------------------------------------------- deviations

_DevKey = tuple[int, date, str]
#: severity, description, child id
_DevValues = tuple[str, str, int | None]


class DeviationsKind(KindBase):
    name = "deviations"
    description = "protocol deviations of families (as `noim deviation add`)"
    required: tuple[str, ...] = ("family_id", "occurred_on", "category", "severity", "description")
    optional: tuple[str, ...] = ("child_id",)

    text_columns: Mapping[str, str] = {
        "category": "protocol_deviations.category",
        "description": "protocol_deviations.description",
    }

    def plan(self, s: Session, actor: Actor, data: CsvData, ctx: ImportContext) -> Plan:
        cells = Cells(data, ctx.dates, "IMP-005")
        families = resolve_families(
            s, actor, cells, "family_id", "record a deviation for it", "IMP-090", "DEV-006"
        )
        children = _optional_children(s, actor, cells)
        dates = cells.date_column("occurred_on")
        categories = cells.text_column("category")
        severities = _lower(cells.text_column("severity"))
        descriptions = cells.text_column("description")
        ctx.progress("checking deviations", 0, data.n_rows)
        family_ids = sorted({f.id for f in families if f is not None})
        stored = _stored_deviations(s, family_ids)
        eldest: dict[int, date] = {}
        for chunk in chunks(family_ids):
            eldest.update(eldest_births(s, chunk))
        rows: list[dict[str, object]] = []
        seen: dict[_DevKey, int] = {}
        unchanged = 0
        for i in range(data.n_rows):
            family, child, on = families[i], children[i], dates[i]
            category, severity, description = categories[i], severities[i], descriptions[i]
            if family is None or on is None or category is None:
                continue
            if severity is None or description is None:
                continue
            if child is None and data.column("child_id")[i]:
                continue  # the child was refused (IMP-004)
            family_id, family_trial_id = family.id, family.trial_id
            problems = deviation_problems(
                data.record(i),
                family_trial_id,
                None,
                None if child is None else (child.trial_id, None, child.family_id),
                family_id,
                on,
                category,
                severity,
                description,
                earliest=deviation_earliest(
                    None if child is None else (child.trial_id, child.date_of_birth),
                    eldest.get(family_id),
                ),
            )
            if problems:
                cells.problems += problems
                continue
            key = (family_id, on, category)
            if key in seen:
                cells.problem(
                    i,
                    "category",
                    category,
                    "one row per family, date and category "
                    f"(row {data.line(seen[key])} has the same)",
                    "IMP-011",
                )
                continue
            seen[key] = i
            values: _DevValues = (severity, description, None if child is None else child.id)
            if key in stored:
                if values in stored[key]:
                    unchanged += 1
                else:
                    cells.problem(
                        i,
                        "description",
                        description,
                        f"the stored deviation of {family_trial_id} ({category} on {on}: "
                        f"severity {stored[key][0][0]}, {stored[key][0][1]!r}); void the stored "
                        "deviation with a reason to change it, not by importing over it",
                        "IMP-010",
                    )
                continue
            rows.append(
                {
                    "family_id": family_id,
                    "child_id": values[2],
                    "occurred_on": on,
                    "category": category,
                    "severity": severity,
                    "description": description,
                }
            )
        ctx.progress("checking deviations", data.n_rows, data.n_rows)

        def write() -> None:
            insert_rows(s, ProtocolDeviation, rows)

        return Plan(cells.problems, len(rows), unchanged, write, unit="deviation")


def _optional_children(s: Session, actor: Actor, cells: Cells) -> list[ChildRef | None]:
    """Every row's child (None where the optional ``child_id`` cell is empty)."""
    if "child_id" not in cells.data.columns:
        return [None] * cells.data.n_rows
    before = len(cells.problems)
    refs = resolve_children(s, actor, cells, "child_id", "record a deviation for", "IMP-004")
    found = cells.problems[before:]
    del cells.problems[before:]
    cells.problems += [p for p in found if not (p.field == "child_id" and p.value == "")]
    return refs


def _stored_deviations(s: Session, family_ids: list[int]) -> dict[_DevKey, list[_DevValues]]:
    out: dict[_DevKey, list[_DevValues]] = {}
    d = ProtocolDeviation
    for chunk in chunks(sorted(set(family_ids))):
        for r in s.execute(
            select(
                d.family_id, d.occurred_on, d.category, d.severity, d.description, d.child_id
            ).where(d.family_id.in_(chunk), d.voided_at.is_(None))
        ):
            out.setdefault((r[0], r[1], r[2]), []).append((r[3], r[4], r[5]))
    return out


DEVIATIONS = DeviationsKind()
