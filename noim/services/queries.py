"""Data queries (data clarification): raise, respond, resolve, close, reopen; list with ageing.

A query is about one record (and optionally one field) of trial data.  Rules
open queries themselves (``noim.db.rule_runner``, ``noim check``); people raise
them by hand.  Every status change is a message in the query's thread
(``data_query_messages.status_to``) and audited.  The workflow::

    open --respond--> answered --resolve--> resolved --close--> closed
    open --resolve--> resolved;   resolved / closed --reopen--> open

Site staff of the query's site respond; data managers (and administrators)
resolve, close and reopen.  Coordinators and researchers see only their sites'
queries, and blinded roles never see an arm's name in a query.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session, aliased

from noim.db.base import utcnow
from noim.db.blinding import (
    arm_word_masker,
    hidden_query_keys,
    hides_service_use,
    sees_arm,
)
from noim.db.models import DataQuery, DataQueryMessage, Site, User
from noim.db.session import Database
from noim.domain.codes import QUERY_STATUSES
from noim.domain.exceptions import NotFound, PermissionDenied, Problem, ValidationError
from noim.domain.roles import Actor, Capability
from noim.services.query_records import (
    find_record,
    missing_record,
    queryable_table,
    record_info,
)
from noim.services.recording import scoped_site_ids

#: action -> (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "respond": (("open",), "answered"),
    "resolve": (("open", "answered"), "resolved"),
    "close": (("resolved",), "closed"),
    "reopen": (("resolved", "closed"), "open"),
}


@dataclass(frozen=True)
class QueryMessageView:
    posted_at: datetime
    author: str | None
    body: str
    status_to: str | None


@dataclass(frozen=True)
class QueryView:
    id: int
    site: str | None
    table: str
    row_key: str
    #: the trial ID of the child or family the record belongs to (when it has one)
    trial_id: str | None
    field: str | None
    rule: str | None
    raised_by: str | None
    raised_at: datetime
    status: str
    message: str
    value_seen: str | None
    closed_at: datetime | None
    #: whole days since the query was raised
    age_days: int
    #: whole days since the last message (or since it was raised)
    idle_days: int
    messages: tuple[QueryMessageView, ...] = ()


# --------------------------------------------------------------------------- checks


def _message(text: str | None, record: str) -> str:
    if text is None or not text.strip():
        raise ValidationError(
            Problem(record, "message", text, "QRY-002", "a message that is not empty")
        )
    return text.strip()


def _require_manager(actor: Actor, action: str) -> None:
    actor.require(Capability.MANAGE_QUERIES, action)
    if not actor.all_sites:
        raise PermissionDenied(
            f"{actor.describe()} may not {action}: only data managers and administrators do"
        )


def _require_site(s: Session, actor: Actor, site_id: int | None, action: str) -> None:
    if site_id is None:
        if not actor.all_sites:
            raise PermissionDenied(
                f"{actor.describe()} may not {action}: it belongs to no site, so only "
                "roles that work across all sites may"
            )
        return
    site = s.get(Site, site_id)
    actor.require_site(site_id, site.code if site else str(site_id), action)


def _hidden(s: Session, actor: Actor, q: DataQuery) -> bool:
    """A query on a record a blinded ``actor`` may not see (service use that reveals the arm)."""
    return (
        q.table_name == "service_use"
        and q.row_key.isdigit()
        and hides_service_use(s, actor, int(q.row_key))
    )


# --------------------------------------------------------------------------- reads


def _views(
    s: Session, actor: Actor, queries: Iterable[DataQuery], threads: bool, today: date
) -> list[QueryView]:
    queries = list(queries)
    ids = [q.id for q in queries]
    mask = arm_word_masker(s, actor)
    sites = dict(s.execute(select(Site.id, Site.code)).all())
    users = dict(
        s.execute(
            select(User.id, User.name).where(
                User.id.in_({q.raised_by_id for q in queries if q.raised_by_id})
            )
        ).all()
    )
    latest_stmt = select(DataQueryMessage.query_id, func.max(DataQueryMessage.posted_at))
    if len(ids) <= 500:  # a page of queries: only their messages (else all, in one pass)
        latest_stmt = latest_stmt.where(DataQueryMessage.query_id.in_(ids))
    last = dict(s.execute(latest_stmt.group_by(DataQueryMessage.query_id)).all())
    by_table: dict[str, list[str]] = {}
    for q in queries:
        by_table.setdefault(q.table_name, []).append(q.row_key)
    trial_ids: dict[tuple[str, str], str | None] = {}
    for table_name, keys in by_table.items():
        try:
            table = queryable_table(table_name)
        except ValidationError:
            continue
        values = [int(k) if k.isdigit() else k for k in keys]
        for key, (tid, _site) in record_info(s, table, values).items():
            trial_ids[(table_name, key)] = tid
    messages: dict[int, list[QueryMessageView]] = {}
    if threads:
        author = aliased(User)
        for m, name in s.execute(
            select(DataQueryMessage, author.name)
            .outerjoin(author, author.id == DataQueryMessage.author_id)
            .where(DataQueryMessage.query_id.in_(ids))
            .order_by(DataQueryMessage.posted_at, DataQueryMessage.id)
        ):
            messages.setdefault(m.query_id, []).append(
                QueryMessageView(m.posted_at, name, mask(m.body) or "", m.status_to)
            )
    out = []
    for q in queries:
        latest = max(q.raised_at, last.get(q.id) or q.raised_at)
        out.append(
            QueryView(
                id=q.id,
                site=sites.get(q.site_id) if q.site_id is not None else None,
                table=q.table_name,
                row_key=q.row_key,
                trial_id=trial_ids.get((q.table_name, q.row_key)),
                field=q.field,
                rule=q.rule_id,
                raised_by=users.get(q.raised_by_id) if q.raised_by_id else None,
                raised_at=q.raised_at,
                status=q.status,
                message=mask(q.message) or "",
                value_seen=mask(q.value_seen),
                closed_at=q.closed_at,
                age_days=(today - q.raised_at.date()).days,
                idle_days=(today - latest.date()).days,
                messages=tuple(messages.get(q.id, ())),
            )
        )
    return out


def list_queries(
    db: Database,
    actor: Actor,
    site: str | None = None,
    statuses: Iterable[str] | None = None,
    rule: str | None = None,
    today: date | None = None,
) -> list[QueryView]:
    """Queries the actor may see (their sites for site-scoped roles), oldest first."""
    actor.require(Capability.READ_TRIAL_DATA, "list data queries")
    wanted = [x.strip() for x in (statuses or ()) if x.strip()]
    bad = [x for x in wanted if x not in QUERY_STATUSES]
    if bad:
        raise ValidationError(
            [
                Problem("query list", "status", x, "QRY-006", "one of " + ", ".join(QUERY_STATUSES))
                for x in bad
            ]
        )
    with db.read(actor) as s:
        site_ids = scoped_site_ids(s, actor, site, "list data queries")
        stmt = query_list_statement(s, actor, site_ids, wanted)
        if rule is not None:
            stmt = stmt.where(DataQuery.rule_id == rule.strip().upper())
        return _views(s, actor, s.scalars(stmt), False, today or utcnow().date())


def query_list_statement(
    s: Session, actor: Actor, site_ids: Collection[int] | None, statuses: Collection[str]
) -> Select[DataQuery]:
    """The queries ``actor`` may see at ``site_ids`` (every site when None) in ``statuses``
    (any when empty), oldest first: shared by ``list_queries`` and the work queue."""
    stmt = select(DataQuery).order_by(DataQuery.raised_at, DataQuery.id)
    if site_ids is not None:
        stmt = stmt.where(DataQuery.site_id.in_(sorted(site_ids)))
    if statuses:
        stmt = stmt.where(DataQuery.status.in_(sorted(statuses)))
    if not sees_arm(actor):
        stmt = stmt.where(
            ~and_(
                DataQuery.table_name == "service_use",
                DataQuery.row_key.in_(hidden_query_keys(s)),
            )
        )
    return stmt


def query_views(
    s: Session, actor: Actor, queries: Iterable[DataQuery], today: date
) -> list[QueryView]:
    """Queries as listed (no threads; blinding applied to their text)."""
    return _views(s, actor, queries, False, today)


def _query_for(s: Session, actor: Actor, query_id: int, action: str) -> DataQuery:
    q = s.get(DataQuery, query_id)
    if q is None or _hidden(s, actor, q):
        raise NotFound(f"no data query {query_id}")
    _require_site(s, actor, q.site_id, f"{action} data query {query_id}")
    return q


def get_query(db: Database, actor: Actor, query_id: int, today: date | None = None) -> QueryView:
    """One query with its thread."""
    actor.require(Capability.READ_TRIAL_DATA, "read data queries")
    with db.read(actor) as s:
        q = _query_for(s, actor, query_id, "read")
        return _views(s, actor, [q], True, today or utcnow().date())[0]


# --------------------------------------------------------------------------- writes


def raise_query(
    db: Database,
    actor: Actor,
    table: str,
    key: str,
    message: str,
    field: str | None = None,
) -> QueryView:
    """Raise a query by hand on a record (and field) of trial data; its site is the record's."""
    actor.require(Capability.MANAGE_QUERIES, "raise data queries")
    body = _message(message, f"data query on {table} {key}")
    with db.write(actor) as s:
        t, row_key, trial_id, site_id = find_record(s, table, key)
        if t.name == "service_use" and hides_service_use(s, actor, int(row_key)):
            raise missing_record(t.name, key.strip())  # as for a record that does not exist
        if field is not None and field not in t.c:
            raise ValidationError(
                Problem(
                    f"{t.name} record {row_key}",
                    "field",
                    field,
                    "QRY-005",
                    "one of " + ", ".join(c.name for c in t.columns),
                )
            )
        where = f"{t.name} {row_key}" + (f" ({trial_id})" if trial_id else "")
        _require_site(s, actor, site_id, f"raise a data query on {where}")
        q = DataQuery(
            site_id=site_id,
            table_name=t.name,
            row_key=row_key,
            field=field,
            rule_id=None,
            raised_by_id=actor.user_id,
            raised_at=utcnow(),
            status="open",
            message=body,
            value_seen=None,
        )
        s.add(q)
        s.flush()
        return _views(s, actor, [q], True, utcnow().date())[0]


def _move(db: Database, actor: Actor, query_id: int, action: str, message: str | None) -> QueryView:
    starts, target = TRANSITIONS[action]
    with db.write(actor, reason=f"data query {query_id}: {action}") as s:
        q = _query_for(s, actor, query_id, action)
        if q.status not in starts:
            raise ValidationError(
                Problem(
                    f"data query {query_id}",
                    "status",
                    q.status,
                    "QRY-001",
                    f"a query whose status is {' or '.join(starts)} to {action} it "
                    f"(it would become {target})",
                )
            )
        now = utcnow()
        q.status = target
        if target == "closed":
            q.closed_at = now
        elif q.closed_at is not None:
            q.closed_at = None
        s.add(
            DataQueryMessage(
                query_id=q.id,
                author_id=actor.user_id,
                posted_at=now,
                body=message or target,
                status_to=target,
            )
        )
        s.flush()
        return _views(s, actor, [q], True, now.date())[0]


def respond(db: Database, actor: Actor, query_id: int, message: str) -> QueryView:
    """Answer an open query (site staff of the query's site): open -> answered."""
    actor.require(Capability.READ_TRIAL_DATA, "respond to data queries")
    if not (actor.can(Capability.WRITE_TRIAL_DATA) or actor.can(Capability.WRITE_ASSESSMENTS)):
        raise PermissionDenied(
            f"{actor.describe()} may not respond to data queries: site staff answer them"
        )
    return _move(db, actor, query_id, "respond", _message(message, f"data query {query_id}"))


def resolve(db: Database, actor: Actor, query_id: int, message: str) -> QueryView:
    """Resolve a query (data managers): open or answered -> resolved."""
    _require_manager(actor, "resolve data queries")
    return _move(db, actor, query_id, "resolve", _message(message, f"data query {query_id}"))


def close(db: Database, actor: Actor, query_id: int, message: str | None = None) -> QueryView:
    """Close a resolved query (data managers): resolved -> closed."""
    _require_manager(actor, "close data queries")
    text = message.strip() if message and message.strip() else None
    return _move(db, actor, query_id, "close", text)


def reopen(db: Database, actor: Actor, query_id: int, message: str) -> QueryView:
    """Reopen a resolved or closed query (data managers): -> open."""
    _require_manager(actor, "reopen data queries")
    return _move(db, actor, query_id, "reopen", _message(message, f"data query {query_id}"))
