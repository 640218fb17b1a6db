"""Import kind ``consents``: one row per consent given for a child.

Columns: ``child_id, consenter_type, form_version, consented_on`` and optionally
``scope`` (default ``participation``) and ``person_id`` (the birth parent's or carer's
noim id, required when the consenter is one).  The consent rules are those of
``noim consent add`` (``ConsentChecker``).  A row is already stored when a live consent
of the same child, scope, consenter type and date exists: identical (form version and
person) it is skipped; different, it is a conflict (IMP-010).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from noim.db.audit import insert_rows
from noim.db.models import Consent
from noim.domain.codes import CONSENTER_TYPES
from noim.domain.roles import Actor
from noim.services.consent import ConsentChecker
from noim.services.imports.base import (
    ChildRef,
    ImportContext,
    KindBase,
    Plan,
    chunks,
    resolve_children,
)
from noim.services.imports.reader import Cells, CsvData

_Key = tuple[int, str, str, date]


class ConsentsKind(KindBase):
    name = "consents"
    description = "consents given for children (as `noim consent add`)"
    required: tuple[str, ...] = ("child_id", "consenter_type", "form_version", "consented_on")
    optional: tuple[str, ...] = ("scope", "person_id")

    text_columns: Mapping[str, str] = {
        "form_version": "consents.form_version",
        "scope": "consents.scope",
    }

    def plan(self, s: Session, actor: Actor, data: CsvData, ctx: ImportContext) -> Plan:
        cells = Cells(data, ctx.dates, "IMP-005")
        children = resolve_children(s, actor, cells, "child_id", "record consent for", "IMP-004")
        types = cells.code_column("consenter_type", CONSENTER_TYPES, rule="CNS-001")
        versions = cells.text_column("form_version")
        dates = cells.date_column("consented_on")
        scopes = [t or "participation" for t in data.column("scope")]
        persons = cells.int_column("person_id", required=False, minimum=1)
        checker = ConsentChecker(s)
        checker.load(persons)
        stored = _stored(s, [c.id for c in children if c is not None])
        rows: list[dict[str, object]] = []
        seen: dict[_Key, int] = {}
        unchanged = 0
        for i in range(data.n_rows):
            child, ctype, version, on = children[i], types[i], versions[i], dates[i]
            if child is not None:
                cells.problems += checker.problems(
                    data.record(i),
                    consenter_type=ctype,
                    form_version=version,
                    consented_on=on,
                    person_id=persons[i],
                    date_of_birth=child.date_of_birth,
                    family_id=child.family_id,
                    family_trial_id=child.family_trial_id,
                    site_id=child.site_id,
                    site_code=child.site_code,
                )
            if child is None or ctype is None or version is None or on is None:
                continue
            key = (child.id, scopes[i], ctype, on)
            person = persons[i]
            if key in seen:
                cells.problem(
                    i,
                    "child_id",
                    child.trial_id,
                    f"one row per child, scope, consenter and date (row {data.line(seen[key])} "
                    "has the same)",
                    "IMP-011",
                )
                continue
            seen[key] = i
            if key in stored:
                if stored[key] == (version, person):
                    unchanged += 1
                else:
                    cells.problem(
                        i,
                        "form_version",
                        version,
                        f"the stored consent of {child.trial_id} on {on} (form "
                        f"{stored[key][0]}, person {stored[key][1]}); correct stored data with a "
                        "reason, not by importing over it",
                        "IMP-010",
                    )
                continue
            rows.append(_row(child, ctype, version, on, scopes[i], person, actor.user_id))

        def write() -> None:
            insert_rows(s, Consent, rows)

        return Plan(cells.problems, len(rows), unchanged, write, unit="consent")


def _row(
    child: ChildRef,
    ctype: str,
    version: str,
    on: date,
    scope: str,
    person: int | None,
    user_id: int | None,
) -> dict[str, object]:
    return {
        "child_id": child.id,
        "consenter_type": ctype,
        "birth_parent_id": person if ctype == "birth_parent" else None,
        "carer_id": person if ctype == "carer" else None,
        "scope": scope,
        "form_version": version,
        "consented_on": on,
        "recorded_by_id": user_id,
    }


def _stored(s: Session, child_ids: list[int]) -> dict[_Key, tuple[str, int | None]]:
    out: dict[_Key, tuple[str, int | None]] = {}
    for chunk in chunks(sorted(set(child_ids))):
        for c in s.execute(
            select(
                Consent.child_id,
                Consent.scope,
                Consent.consenter_type,
                Consent.consented_on,
                Consent.form_version,
                Consent.birth_parent_id,
                Consent.carer_id,
            ).where(Consent.child_id.in_(chunk), Consent.voided_at.is_(None))
        ):
            out[(c[0], c[1], c[2], c[3])] = (c[4], c[5] if c[5] is not None else c[6])
    return out


CONSENTS = ConsentsKind()
