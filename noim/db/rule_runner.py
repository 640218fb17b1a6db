"""Running the set rules in a unit of work, and opening data queries for what they find.

``before_commit`` is called by ``Database.write`` just before it commits: it runs
every set rule that reads a table the unit of work wrote (``rule_checks.READS``) over
the children it touched (``noim.db.touched``), or over the whole database when it
touched more than ``WHOLE_DATABASE_ABOVE`` of them (a bulk import).  A violation that
was already there, in a table the unit of work did not write, is left to ``noim check``.  A new hard violation refuses the whole unit of work
(``ValidationError``, one problem per violation); a new soft violation opens a
data query in the same transaction (audited).  A unit of work that touched no
child runs no rule.

A violation is *known* (no new query, and not refused again) when a query for
the same rule, table, row and field is open or answered, or was resolved or
closed by a person for the same value (the site confirmed it).  Queries that
``noim check`` closed because the data were fixed do not count.  Known hard
violations are not refused so that data written before a rule existed, once
``noim check`` has queried them, do not block unrelated writes to that child.
Over the whole database, only hard violations about a child, family or
assessment the unit of work wrote refuse it; the others elsewhere are left to
``noim check`` (soft ones found anywhere open their queries).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from noim.db import touched
from noim.db.audit import insert_rows
from noim.db.base import utcnow
from noim.db.models import Assessment, Child, DataQuery, DataQueryMessage
from noim.db.rule_checks import Scope, run_checks
from noim.domain.exceptions import Problem, ValidationError
from noim.domain.rules import HARD, SOFT, Violation

#: above this many touched children (families, assessments) the rules run over the whole database
WHOLE_DATABASE_ABOVE = 1000
#: the first words of the thread message ``noim check`` writes when it closes a query
AUTO_CLOSE_PREFIX = "closed by noim check"
ACTIVE_STATUSES = ("open", "answered")


def scope_of(s: Session, t: touched.Touched) -> Scope:
    """The ids of the children ``t`` names (``None``: too many, check the whole database)."""
    if len(t) > WHOLE_DATABASE_ABOVE:
        return None
    children = set(t.children)
    links = []
    if t.families:
        links.append(Child.family_id.in_(sorted(t.families)))
    if t.assessments:
        links.append(
            Child.id.in_(
                select(Assessment.child_id).where(Assessment.id.in_(sorted(t.assessments)))
            )
        )
    if links:
        children.update(s.scalars(select(Child.id).where(or_(*links))))
    return None if len(children) > WHOLE_DATABASE_ABOVE else frozenset(children)


def known_filter(s: Session, violations: Iterable[Violation]) -> Callable[[Violation], bool]:
    """A test telling which of ``violations`` are already under a data query (one query)."""
    rules = sorted({v.rule for v in violations})
    if not rules:
        return lambda _v: False
    auto_closed = exists().where(
        DataQueryMessage.query_id == DataQuery.id,
        DataQueryMessage.body.like(AUTO_CLOSE_PREFIX + "%"),
    )
    rows = s.execute(
        select(
            DataQuery.rule_id,
            DataQuery.table_name,
            DataQuery.row_key,
            DataQuery.field,
            DataQuery.status,
            DataQuery.value_seen,
        ).where(
            DataQuery.rule_id.in_(rules),
            or_(
                DataQuery.status.in_(ACTIVE_STATUSES),
                and_(DataQuery.status.in_(("resolved", "closed")), ~auto_closed),
            ),
        )
    )
    active: set[tuple[str, str, str, str]] = set()
    confirmed: set[tuple[str, str, str, str, str]] = set()
    for rule_id, table, key, field, status, value in rows:
        k = (str(rule_id), str(table), str(key), str(field))
        if status in ACTIVE_STATUSES:
            active.add(k)
        else:
            confirmed.add((*k, str(value)))
    return lambda v: v.key in active or (*v.key, v.value) in confirmed


def unique(violations: Iterable[Violation]) -> list[Violation]:
    """One violation per rule, table, row and field (the first found)."""
    seen: dict[tuple[str, str, str, str], Violation] = {}
    for v in violations:
        seen.setdefault(v.key, v)
    return list(seen.values())


def open_queries(s: Session, violations: Sequence[Violation]) -> int:
    """Open one data query per violation (audited); returns how many were opened."""
    now = utcnow()
    rows = [
        {
            "site_id": v.site_id,
            "table_name": v.table,
            "row_key": v.row_key,
            "field": v.field,
            "rule_id": v.rule,
            "raised_by_id": None,
            "raised_at": now,
            "status": "open",
            "message": v.message,
            "value_seen": v.value,
            "closed_at": None,
        }
        for v in unique(violations)
    ]
    insert_rows(s, DataQuery, rows)
    return len(rows)


def problem(v: Violation) -> Problem:
    return Problem(v.record, v.field, v.value, v.rule, v.expected, subject=v.trial_id)


def in_write(v: Violation, t: touched.Touched) -> bool:
    """Whether ``v`` is about a child, family or assessment the unit of work wrote."""
    return (
        v.child_id in t.children
        or v.family_id in t.families
        or (v.table == "assessments" and v.row_key.isdigit() and int(v.row_key) in t.assessments)
    )


def before_commit(s: Session) -> None:
    """Run the set rules over what this unit of work touched; refuse or query what they find."""
    t = touched.take(s)
    if not len(t):
        return
    scope = scope_of(s, t)
    violations = run_checks(s, scope, t.tables)
    if not violations:
        return
    known = known_filter(s, violations)
    new = [v for v in unique(violations) if not known(v)]
    hard = [v for v in new if v.severity == HARD and (scope is not None or in_write(v, t))]
    if hard:
        raise ValidationError([problem(v) for v in hard])
    open_queries(s, [v for v in new if v.severity == SOFT])
    s.flush()
    touched.take(s)
