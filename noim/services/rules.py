"""The rules registry as a listing, and ``noim check``: every set rule over the whole database."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, select

from noim.db.audit import insert_rows, update_rows
from noim.db.base import utcnow
from noim.db.models import DataQuery, DataQueryMessage
from noim.db.rule_checks import CHECKS, run_checks
from noim.db.rule_runner import (
    ACTIVE_STATUSES,
    AUTO_CLOSE_PREFIX,
    known_filter,
    open_queries,
    unique,
)
from noim.db.session import Database
from noim.domain.exceptions import PermissionDenied
from noim.domain.roles import Actor, Capability
from noim.domain.rules import RULE_LIST, Rule, rule


def list_rules(kind: str | None = None) -> list[Rule]:
    """Every registered rule (only ``inline`` or ``set`` ones when ``kind`` is given), by id."""
    return sorted((r for r in RULE_LIST if kind is None or r.kind == kind), key=lambda r: r.id)


@dataclass(frozen=True)
class RuleCheck:
    rule: str
    severity: str
    description: str
    #: records breaking the rule now
    violations: int
    #: queries opened by this run
    opened: int
    #: queries closed by this run (the data now satisfy the rule)
    closed: int
    #: queries of this rule open or answered after the run
    still_open: int


@dataclass(frozen=True)
class CheckReport:
    rules: tuple[RuleCheck, ...]

    @property
    def violations(self) -> int:
        return sum(r.violations for r in self.rules)

    @property
    def opened(self) -> int:
        return sum(r.opened for r in self.rules)

    @property
    def closed(self) -> int:
        return sum(r.closed for r in self.rules)

    @property
    def still_open(self) -> int:
        return sum(r.still_open for r in self.rules)


def check(db: Database, actor: Actor) -> CheckReport:
    """Run every set rule over the whole database: open queries for new violations (hard and
    soft), close the rule-raised queries whose violation is gone, count per rule."""
    actor.require(Capability.MANAGE_QUERIES, "run noim check")
    if not actor.all_sites:
        raise PermissionDenied(
            f"{actor.describe()} may not run noim check: only data managers and administrators do"
        )
    with db.write(actor, reason="noim check") as s:
        violations = unique(run_checks(s, None))
        known = known_filter(s, violations)
        new = [v for v in violations if not known(v)]
        open_queries(s, new)
        current = {v.key for v in violations}
        active = s.execute(
            select(
                DataQuery.id,
                DataQuery.rule_id,
                DataQuery.table_name,
                DataQuery.row_key,
                DataQuery.field,
            ).where(
                DataQuery.rule_id.in_(sorted(CHECKS)),
                DataQuery.raised_by_id.is_(None),
                DataQuery.status.in_(ACTIVE_STATUSES),
            )
        ).all()
        gone = [(qid, r) for qid, r, t, k, f in active if (r, t, k, f) not in current]
        now = utcnow()
        update_rows(
            s,
            DataQuery,
            {qid: {"status": "closed", "closed_at": now} for qid, _r in gone},
            "noim check: the data now satisfy the rule",
        )
        insert_rows(
            s,
            DataQueryMessage,
            [
                {
                    "query_id": qid,
                    "author_id": actor.user_id,
                    "posted_at": now,
                    "body": f"{AUTO_CLOSE_PREFIX}: the data now satisfy {r}",
                    "status_to": "closed",
                }
                for qid, r in gone
            ],
        )
        s.flush()
        still = dict(
            s.execute(
                select(DataQuery.rule_id, func.count())
                .where(DataQuery.rule_id.in_(sorted(CHECKS)), DataQuery.status.in_(ACTIVE_STATUSES))
                .group_by(DataQuery.rule_id)
            ).all()
        )
    found = Counter(v.rule for v in violations)
    opened = Counter(v.rule for v in new)
    closed = Counter(r for _q, r in gone)
    return CheckReport(
        tuple(
            RuleCheck(
                rule=rid,
                severity=rule(rid).severity,
                description=rule(rid).description,
                violations=found[rid],
                opened=opened[rid],
                closed=closed[rid],
                still_open=int(still.get(rid, 0)),
            )
            for rid in sorted(CHECKS)
        )
    )
