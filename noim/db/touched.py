"""Which children a unit of work touched, collected by the audit writer as rows are written.

Every inserted or updated row passes through the audit writer (ORM flushes,
``insert_rows``, ``update_rows``); it hands the rows here.  A row links to
children through ``child_id`` (or is a child), ``family_id`` (or is a family:
all its children) or ``assessment_id`` (the assessment's child).  Rows of
tables with no such link touch no child.  The names of the tables written are kept too:
a set rule that reads none of them cannot have found anything new.  Nothing is queried here: family and
assessment ids are resolved to children in one query when the rules run.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import Session

_KEY = "noim_touched"


@dataclass
class Touched:
    children: set[int] = field(default_factory=set)
    families: set[int] = field(default_factory=set)
    assessments: set[int] = field(default_factory=set)
    #: the tables of those rows (the set rules that read none of them need not run)
    tables: set[str] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.children) + len(self.families) + len(self.assessments)


#: table -> (child column, family column, assessment column), None where absent
_LINKS: dict[str, tuple[str | None, str | None, str | None]] = {}


def _links(table: Table) -> tuple[str | None, str | None, str | None]:
    links = _LINKS.get(table.name)
    if links is None:
        cols = table.c

        def pick(own: str, column: str) -> str | None:
            if table.name == own:
                return "id"
            return column if column in cols else None

        links = (
            pick("children", "child_id"),
            pick("families", "family_id"),
            pick("assessments", "assessment_id"),
        )
        _LINKS[table.name] = links
    return links


def links_to_children(table: Table) -> bool:
    """Whether rows of ``table`` link to children (only those are noted, and run rules)."""
    return any(col is not None for col in _links(table))


def note(session: Session, table: Table, rows: Collection[Mapping[str, Any]]) -> None:
    """Record the children (families, assessments) that ``rows`` of ``table`` link to."""
    if "tx_id" not in session.info:  # not a write unit of work
        return
    if not links_to_children(table):
        return
    child_col, family_col, assessment_col = _links(table)
    touched: Touched = session.info.setdefault(_KEY, Touched())
    if rows:
        touched.tables.add(table.name)
    for col, bucket in (
        (child_col, touched.children),
        (family_col, touched.families),
        (assessment_col, touched.assessments),
    ):
        if col is not None:
            bucket.update(v for r in rows if (v := r[col]) is not None)


def take(session: Session) -> Touched:
    """What the unit of work touched since the last call (and forget it)."""
    touched: Touched | None = session.info.pop(_KEY, None)
    return touched if touched is not None else Touched()
