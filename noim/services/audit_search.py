"""Searching the audit trail: by table, record, user and date range, a page at a time.

``search`` is the audit reader's list (the web application's ``/audit``), newest first: one
count and one page of rows, plus the look-ups blinding needs, whatever the length of the
trail.  Each row is shown as ``noim audit show`` shows it to the same role
(``noim.services.audit``): identity values hidden from roles that may not read them; for
blinded roles the arm-revealing columns masked and words naming an arm masked in free text;
and the rows of a service-use record that reveals the arm (with the data queries on it and
their messages) left out, as for a record that does not exist.  The record filter matches
the audit rows written for that record itself; the record's full history (with parts
written together with their parent record) is ``noim.services.audit.history``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import String, and_, cast, func, or_, select
from sqlalchemy.orm import Session

from noim.db import audit as audit_db
from noim.db.blinding import arm_word_masker, hidden_query_keys, sees_arm
from noim.db.models import AuditLog, Child, DataQuery, DataQueryMessage, Family
from noim.db.session import Database
from noim.domain.exceptions import Problem, ValidationError
from noim.domain.roles import Actor, Capability
from noim.services.audit import AuditRecord, Masker, _mask

#: most audit rows on one page
MAX_PER_PAGE = 200


@dataclass(frozen=True)
class AuditPage:
    """One page of audit rows (newest first) and how many match the filters in all."""

    rows: tuple[AuditRecord, ...]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def has_previous(self) -> bool:
        return self.page > 1


def table_names() -> list[str]:
    """The audited tables, by name (what the table filter accepts)."""
    return sorted(t.name for t in audit_db.audited_tables())


def _check(
    table: str | None,
    key: str | None,
    since: date | None,
    until: date | None,
    page: int,
    per_page: int,
) -> None:
    problems = []
    if table is not None and table not in table_names():
        problems.append(
            Problem("audit search", "table", table, "AUD-001", "an audited table, e.g. children")
        )
    if key is not None and table is None:
        problems.append(
            Problem("audit search", "key", key, "AUD-002", "a table to look the record up in")
        )
    if since is not None and until is not None and until < since:
        problems.append(
            Problem(
                "audit search",
                "until",
                until.isoformat(),
                "AUD-003",
                f"a date on or after the start of the range ({since.isoformat()})",
            )
        )
    if page < 1:
        problems.append(Problem("audit search", "page", page, "AUD-004", "a page number from 1"))
    if not 1 <= per_page <= MAX_PER_PAGE:
        problems.append(
            Problem(
                "audit search", "per_page", per_page, "AUD-004", f"1 to {MAX_PER_PAGE} per page"
            )
        )
    if problems:
        raise ValidationError(problems)


def _row_key(s: Session, table: str, key: str) -> str:
    """``key`` as the audit trail holds it: a trial ID of a family or child becomes its id."""
    key = key.strip()
    if table not in ("families", "children") or key.isdigit():
        return key
    model: Any = Family if table == "families" else Child
    found = s.scalar(select(model.id).where(model.trial_id == key.upper()))
    if found is None:
        raise ValidationError(
            Problem("audit search", "key", key, "AUD-002", f"the trial ID of one of the {table}")
        )
    return str(found)


def _hidden(s: Session) -> Any:
    """For a blinded reader: the audit rows of arm-revealing service use, of the data
    queries on them and of those queries' messages."""
    hidden_uses = hidden_query_keys(s)
    on_hidden = select(DataQuery.id).where(
        DataQuery.table_name == "service_use", DataQuery.row_key.in_(hidden_uses)
    )
    query_keys = select(cast(DataQuery.id, String)).where(
        DataQuery.table_name == "service_use", DataQuery.row_key.in_(hidden_query_keys(s))
    )
    message_keys = select(cast(DataQueryMessage.id, String)).where(
        DataQueryMessage.query_id.in_(on_hidden)
    )
    return or_(
        and_(AuditLog.table_name == "service_use", AuditLog.row_key.in_(hidden_query_keys(s))),
        and_(AuditLog.table_name == "data_queries", AuditLog.row_key.in_(query_keys)),
        and_(AuditLog.table_name == "data_query_messages", AuditLog.row_key.in_(message_keys)),
    )


def _masked(actor: Actor, words: Masker, r: AuditLog, value: str | None) -> str | None:
    try:
        return _mask(actor, words, r.table_name, r.field, value)
    except KeyError:  # a row of no model's table (an event): only free-text masking
        return words(value)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def search(
    db: Database,
    actor: Actor,
    *,
    table: str | None = None,
    key: str | None = None,
    user: str | None = None,
    since: date | None = None,
    until: date | None = None,
    page: int = 1,
    per_page: int = 50,
) -> AuditPage:
    """Page ``page`` of the audit rows matching every filter given, newest first.

    ``table``: an audited table; ``key``: a record of it (its key, or a trial ID for
    families and children); ``user``: the user name that wrote the row; ``since`` /
    ``until``: the first and last day (UTC) of the range, both included.
    """
    actor.require(Capability.READ_AUDIT, "search the audit trail")
    table = table.strip() if table and table.strip() else None
    key = key.strip() if key and key.strip() else None
    user = user.strip() if user and user.strip() else None
    _check(table, key, since, until, page, per_page)
    with db.read(actor) as s:
        where: list[Any] = []
        if table is not None:
            where.append(AuditLog.table_name == table)
        if key is not None and table is not None:
            where.append(AuditLog.row_key == _row_key(s, table, key))
        if user is not None:
            where.append(AuditLog.user_name == user)
        if since is not None:
            where.append(AuditLog.recorded_at >= _midnight(since))
        if until is not None:
            where.append(AuditLog.recorded_at < _midnight(until + timedelta(days=1)))
        if not sees_arm(actor):
            where.append(~_hidden(s))
        total = int(s.scalar(select(func.count()).select_from(AuditLog).where(*where)) or 0)
        rows = list(
            s.scalars(
                select(AuditLog)
                .where(*where)
                .order_by(AuditLog.seq.desc())
                .limit(per_page)
                .offset((page - 1) * per_page)
            )
        )
        words = arm_word_masker(s, actor) if rows else (lambda text: text)
        found = tuple(
            AuditRecord(
                seq=r.seq,
                recorded_at=r.recorded_at,
                user=r.user_name,
                role=r.role,
                action=r.action,
                table=r.table_name,
                key=r.row_key,
                field=r.field,
                old=_masked(actor, words, r, r.old_value),
                new=_masked(actor, words, r, r.new_value),
                reason=words(r.reason),
            )
            for r in rows
        )
        return AuditPage(found, total, page, per_page)
