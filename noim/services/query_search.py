"""Data queries a page at a time: filtered by site, status and age, oldest first.

``page_queries`` is ``noim.services.queries.list_queries`` with paging and an age filter,
for lists that must not grow with the trial (the web application's ``/queries``): one
count, one page of queries, and the few look-ups ``queries`` makes for a page of views,
whatever the number of queries stored.  Site scope and blinding are those of
``list_queries``: site-scoped roles see only their sites' queries, and blinded roles never
see a query on a service-use record that reveals the arm.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.sql import ColumnElement

from noim.db.base import utcnow
from noim.db.blinding import hidden_query_keys, sees_arm
from noim.db.models import DataQuery, Site
from noim.db.session import Database
from noim.domain.codes import QUERY_STATUSES
from noim.domain.exceptions import Problem, ValidationError
from noim.domain.roles import Actor, Capability
from noim.services.queries import QueryView, _views
from noim.services.recording import scoped_site_ids

#: most queries on one page
MAX_PER_PAGE = 200


@dataclass(frozen=True)
class QueryPage:
    """One page of queries (oldest first) and how many match the filters in all."""

    queries: tuple[QueryView, ...]
    total: int
    page: int
    per_page: int
    #: the codes of the sites the reader may filter by (their own, or every site)
    sites: tuple[str, ...] = ()

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def has_previous(self) -> bool:
        return self.page > 1


def _check(
    statuses: list[str], min_age: int | None, max_age: int | None, page: int, per_page: int
) -> None:
    problems = [
        Problem("query list", "status", x, "QRY-006", "one of " + ", ".join(QUERY_STATUSES))
        for x in statuses
        if x not in QUERY_STATUSES
    ]
    for name, value in (("min_age", min_age), ("max_age", max_age)):
        if value is not None and value < 0:
            problems.append(
                Problem("query list", name, value, "QRY-007", "an age of 0 days or more")
            )
    if min_age is not None and max_age is not None and 0 <= max_age < min_age:
        problems.append(
            Problem(
                "query list",
                "max_age",
                max_age,
                "QRY-007",
                f"an age range whose upper end is at least its lower end ({min_age} days)",
            )
        )
    if page < 1:
        problems.append(Problem("query list", "page", page, "QRY-008", "a page number from 1"))
    if not 1 <= per_page <= MAX_PER_PAGE:
        problems.append(
            Problem("query list", "per_page", per_page, "QRY-008", f"1 to {MAX_PER_PAGE} per page")
        )
    if problems:
        raise ValidationError(problems)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def page_queries(
    db: Database,
    actor: Actor,
    *,
    site: str | None = None,
    statuses: Iterable[str] | None = None,
    min_age: int | None = None,
    max_age: int | None = None,
    page: int = 1,
    per_page: int = 50,
    today: date | None = None,
) -> QueryPage:
    """Page ``page`` of the queries ``actor`` may see, oldest first.

    ``site``: one site's code (checked against the actor's sites); ``statuses``: only these;
    ``min_age`` / ``max_age``: only queries raised at least / at most that many whole days
    before ``today`` (the age ``QueryView.age_days`` shows).
    """
    actor.require(Capability.READ_TRIAL_DATA, "list data queries")
    wanted = [x.strip() for x in (statuses or ()) if x.strip()]
    _check(wanted, min_age, max_age, page, per_page)
    today = today or utcnow().date()
    with db.read(actor) as s:
        where: list[ColumnElement[bool]] = []
        site_ids = scoped_site_ids(s, actor, site, "list data queries")
        if site_ids is not None:
            where.append(DataQuery.site_id.in_(site_ids))
        if wanted:
            where.append(DataQuery.status.in_(wanted))
        if min_age is not None:  # raised on or before today - min_age
            where.append(DataQuery.raised_at < _midnight(today - timedelta(days=min_age - 1)))
        if max_age is not None:  # raised on or after today - max_age
            where.append(DataQuery.raised_at >= _midnight(today - timedelta(days=max_age)))
        if not sees_arm(actor):
            where.append(
                ~and_(
                    DataQuery.table_name == "service_use",
                    DataQuery.row_key.in_(hidden_query_keys(s)),
                )
            )
        total = int(s.scalar(select(func.count()).select_from(DataQuery).where(*where)) or 0)
        stmt = (
            select(DataQuery)
            .where(*where)
            .order_by(DataQuery.raised_at, DataQuery.id)
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
        rows = list(s.scalars(stmt))
        views = _views(s, actor, rows, False, today) if rows else []
        if actor.all_sites:
            sites = tuple(s.scalars(select(Site.code).order_by(Site.code)))
        else:
            sites = tuple(sorted(actor.site_codes))
        return QueryPage(tuple(views), total, page, per_page, sites)
