"""A coordinator's work queue: what to do next at their sites, in one read.

Four sections, each the count of everything outstanding and its first ``limit`` rows:

* follow-up visits due and overdue, soonest first (``visits.due_statement``: the same
  visits ``noim followups due`` lists), each with the instruments still to enter at it
  (``followup_forms``: the due and overdue cells of the child's status grid, so a page
  links each one's entry form);
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

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, case, exists, func, select
from sqlalchemy.orm import Session

from noim.db.base import utcnow
from noim.db.models import Allocation, Assessment, Child, Family, Instrument, Site
from noim.db.paging import first_rows
from noim.db.session import Database
from noim.domain.exceptions import Problem, ValidationError
from noim.domain.roles import Actor, Capability
from noim.domain.status_grid import forms_to_enter
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
    #: the instruments still to enter at each listed follow-up, by visit id (the due and
    #: overdue cells of the child's status grid; empty: only the visit itself to record)
    followup_forms: dict[int, tuple[str, ...]] = field(default_factory=dict)


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
            followup_forms=_forms_to_enter(s, followups, {v.id: v.child_id for v, *_ in due}),
        )


def _count(s: Session, stmt: Select[*tuple[Any, ...]]) -> int:
    """How many rows ``stmt`` selects (ordering dropped)."""
    return int(s.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0)


def _forms_to_enter(
    s: Session, followups: Sequence[DueVisit], children: dict[int, int]
) -> dict[int, tuple[str, ...]]:
    """The instruments still to enter at each follow-up (``forms_to_enter``), by visit id
    (``children``: each visit's child id): two statements whatever the number of rows (at
    most ``MAX_LIMIT``)."""
    if not followups:
        return {}
    born: dict[int, date] = {}
    entered: dict[tuple[int, str], set[str]] = {}
    for child_id, dob, tp, code in s.execute(
        select(Child.id, Child.date_of_birth, Assessment.timepoint_code, Instrument.code)
        .outerjoin(
            Assessment, and_(Assessment.child_id == Child.id, Assessment.voided_at.is_(None))
        )
        .outerjoin(Instrument, Instrument.id == Assessment.instrument_id)
        .where(Child.id.in_(set(children.values())))
    ):
        born[child_id] = dob
        if tp is not None:
            entered.setdefault((child_id, tp), set()).add(code)
    timepoints = {t.code: t for t in stored_definition(s).timepoints}
    out: dict[int, tuple[str, ...]] = {}
    for v in followups:
        child_id = children[v.visit_id]
        timepoint = timepoints.get(v.timepoint)
        done = entered.get((child_id, v.timepoint), set())
        out[v.visit_id] = (
            ()
            if timepoint is None
            else forms_to_enter(timepoint, born[child_id], v.target_date, done)
        )
    return out


def _waiting(s: Session, site_ids: list[int] | None, limit: int) -> tuple[list[WaitingFamily], int]:
    live = and_(Child.family_id == Family.id, Child.voided_at.is_(None))
    all_ineligible = and_(
        exists().where(live),
        ~exists().where(live, Child.eligibility_status != "ineligible"),
    )
    n_children = select(func.count(Child.id)).where(live).correlate(Family).scalar_subquery()
    # the live families not yet randomised first (an anti-join on the allocations' unique
    # index): the children's eligibility is then read for those few only, where one
    # statement had PostgreSQL read every child of the trial for every family of the site
    unallocated = select(Family.id).where(
        Family.voided_at.is_(None), ~exists().where(Allocation.family_id == Family.id)
    )
    if site_ids is not None:
        unallocated = unallocated.where(Family.site_id.in_(site_ids))
    candidates = list(s.scalars(unallocated))
    stmt = (
        select(Family, Site, n_children)
        .join(Site, Site.id == Family.site_id)
        .where(Family.id.in_(candidates), ~all_ineligible)
        .order_by(Family.registered_at, Family.id)
    )
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
