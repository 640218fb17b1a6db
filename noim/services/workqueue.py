"""A coordinator's work queue: what to do next at their sites, in one read.

Four sections, each the count of everything outstanding and its first ``limit`` rows:

* follow-up visits due and overdue, soonest first (``visits.due_statement``: the same
  visits ``noim followups due`` lists);
* open data queries on the sites' records, oldest first (``queries.query_list_statement``:
  the same scope and blinding as ``noim query list``);
* families registered but not yet randomised, each with what the randomisation gate
  still misses (``randomisation_core.gate_report``: the same ``gate_problems`` that
  ``noim randomise`` refuses with, except the declared stratification factors, which are
  asked when randomising), oldest registration first.  A family whose live
  children were all found ineligible is not waiting for anything and is left out;
* serious adverse events whose follow-up is outstanding (not yet marked complete;
  ``safety.outstanding_saes``), oldest report first.

Every section is a count and a limited query, so the number of SQL statements does not
grow with the size of the trial.  Nothing here names an arm: the sections hold no
allocation, and free texts (query messages, SAE descriptions) are masked for blinded
roles by the services that build them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, case, exists, func, select
from sqlalchemy.orm import Session

from noim.db.base import utcnow
from noim.db.models import Allocation, Child, Family, Site
from noim.db.paging import first_rows
from noim.db.session import Database
from noim.domain.exceptions import Problem, ValidationError
from noim.domain.roles import Actor, Capability
from noim.services.queries import QueryView, query_list_statement, query_views
from noim.services.randomisation_core import asked_when_randomising, gate_report
from noim.services.safety import SaeView, outstanding_saes
from noim.services.setup import stored_definition
from noim.services.visits import DueVisit, due_rows, due_statement

#: the most rows a section may ask for
MAX_LIMIT = 500


@dataclass(frozen=True)
class WaitingFamily:
    """A registered family not yet randomised, and what the gate still misses."""

    family: str
    site: str
    registered_at: datetime
    #: live children
    children: int
    #: the problems ``randomise`` would refuse with now (empty: ready to randomise)
    missing: tuple[Problem, ...]

    @property
    def ready(self) -> bool:
        return not self.missing


@dataclass(frozen=True)
class WorkQueue:
    as_of: date
    #: the sites the queue covers (every site for roles that see all)
    sites: tuple[str, ...]
    limit: int
    followups: tuple[DueVisit, ...]
    followups_total: int
    queries: tuple[QueryView, ...]
    queries_total: int
    waiting: tuple[WaitingFamily, ...]
    waiting_total: int
    saes: tuple[SaeView, ...]
    saes_total: int


def work_queue(
    db: Database, actor: Actor, *, as_of: date | None = None, limit: int = 50
) -> WorkQueue:
    """The work queue at the actor's sites (every site for roles that see all sites)."""
    actor.require(Capability.READ_TRIAL_DATA, "see the work queue")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(
            Problem(
                "work queue", "limit", limit, "WQ-001", f"a number of rows from 1 to {MAX_LIMIT}"
            )
        )
    today = as_of or utcnow().date()
    with db.read(actor) as s:
        site_ids = None if actor.all_sites else sorted(actor.site_ids)
        sites = select(Site.code).order_by(Site.code)
        if site_ids is not None:
            sites = sites.where(Site.id.in_(site_ids))
        site_codes = tuple(s.scalars(sites))
        visits = due_statement(site_ids, today)
        due, followups_total = first_rows(s, visits, limit)
        followups = due_rows(due, today)
        open_queries = query_list_statement(s, actor, site_ids, ["open"])
        queries = query_views(s, actor, s.scalars(open_queries.limit(limit)), today)
        queries_total = _count(s, open_queries)
        waiting, waiting_total = _waiting(s, site_ids, limit)
        saes_total, saes = outstanding_saes(s, actor, site_ids, limit)
        return WorkQueue(
            as_of=today,
            sites=site_codes,
            limit=limit,
            followups=tuple(followups),
            followups_total=followups_total,
            queries=tuple(queries),
            queries_total=queries_total,
            waiting=tuple(waiting),
            waiting_total=waiting_total,
            saes=tuple(saes),
            saes_total=saes_total,
        )


def _count(s: Session, stmt: Select[*tuple[Any, ...]]) -> int:
    """How many rows ``stmt`` selects (ordering dropped)."""
    return int(s.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0)


def _waiting(s: Session, site_ids: list[int] | None, limit: int) -> tuple[list[WaitingFamily], int]:
    live = and_(Child.family_id == Family.id, Child.voided_at.is_(None))
    all_ineligible = and_(
        exists().where(live),
        ~exists().where(live, Child.eligibility_status != "ineligible"),
    )
    n_children = select(func.count(Child.id)).where(live).correlate(Family).scalar_subquery()
    stmt = (
        select(Family, Site, n_children)
        .join(Site, Site.id == Family.site_id)
        .where(
            Family.voided_at.is_(None),
            ~exists().where(Allocation.family_id == Family.id),
            ~all_ineligible,
        )
        .order_by(Family.registered_at, Family.id)
    )
    if site_ids is not None:
        stmt = stmt.where(Family.site_id.in_(site_ids))
    rows, total = first_rows(s, stmt, limit)
    if not rows:
        return [], total
    definition = stored_definition(s)
    asked = asked_when_randomising(definition)  # declared on the randomise page
    missing = gate_report(
        s, [(f, site) for f, site, _n in rows], definition, {f.id: asked for f, _s, _n in rows}
    )
    return [
        WaitingFamily(
            family=f.trial_id,
            site=site.code,
            registered_at=f.registered_at,
            children=int(n),
            missing=tuple(missing[f.id]),
        )
        for f, site, n in rows
    ], total


#: the age bands of ``query_ages``: (label, at least this many days old)
AGE_BANDS: tuple[tuple[str, int], ...] = (
    ("under 7 days", 0),
    ("7 to 29 days", 7),
    ("30 to 89 days", 30),
    ("90 days or more", 90),
)


@dataclass(frozen=True)
class QueryAges:
    """Queries still needing work (open or answered) by status and age band."""

    as_of: date
    #: status -> band label -> count (every status and band present)
    counts: dict[str, dict[str, int]]

    @property
    def total(self) -> int:
        return sum(sum(bands.values()) for bands in self.counts.values())


def query_ages(db: Database, actor: Actor, *, as_of: date | None = None) -> QueryAges:
    """Open and answered queries the actor may see, counted by status and age (one query).

    The scope and blinding are ``list_queries``' own (``query_list_statement``); a query's
    age is whole days since it was raised, as ``QueryView.age_days``.
    """
    actor.require(Capability.READ_TRIAL_DATA, "count data queries")
    today = as_of or utcnow().date()
    statuses = ("open", "answered")
    with db.read(actor) as s:
        site_ids = None if actor.all_sites else sorted(actor.site_ids)
        listed = query_list_statement(s, actor, site_ids, statuses).subquery()
        # a query raised on day D is (today - D) days old: it is at least N days old when
        # it was raised before the start of day today - N + 1
        whens = [
            (listed.c.raised_at < _day_start(today - timedelta(days=days - 1)), label)
            for label, days in reversed(AGE_BANDS)
            if days > 0
        ]
        band = case(*whens, else_=AGE_BANDS[0][0])
        counts = {st: {label: 0 for label, _d in AGE_BANDS} for st in statuses}
        for status, label, n in s.execute(
            select(listed.c.status, band, func.count()).group_by(listed.c.status, band)
        ):
            counts[str(status)][str(label)] += int(n)
        return QueryAges(today, counts)


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
