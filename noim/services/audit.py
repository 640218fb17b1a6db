"""Reading and verifying the audit trail (permission-checked, blinding applied)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, and_, or_, select
from sqlalchemy.orm import Session

from noim.db import audit as audit_db
from noim.db.audit_grouped import GROUPED_FIELD, expand_audit_row, grouped_key
from noim.db.audit_verify import ChainReport, DataReport, verify_chain, verify_data
from noim.db.blinding import arm_word_masker, hides_service_use
from noim.db.freeze_verify import FreezeCheck, verify_all
from noim.db.models import AuditLog, Child, Family
from noim.db.session import Database
from noim.domain.exceptions import NotFound
from noim.domain.roles import Actor, Capability
from noim.services import anchors
from noim.services.anchors import Anchor, AnchorReport

MASKED = "[masked: arm]"
IDENTIFIABLE = "[identifiable]"
Masker = Callable[[str | None], str | None]


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    recorded_at: datetime
    user: str
    role: str
    action: str
    table: str
    key: str
    field: str | None
    old: str | None
    new: str | None
    reason: str | None


@dataclass(frozen=True)
class VerifyResult:
    chain: ChainReport
    data: DataReport | None
    #: every data freeze, checked against its hashes and the audit trail (None: not checked)
    freezes: tuple[FreezeCheck, ...] | None = None
    anchor: AnchorReport | None = None

    @property
    def ok(self) -> bool:
        return (
            self.chain.ok
            and (self.data is None or self.data.ok)
            and all(f.ok for f in self.freezes or ())
            and (self.anchor is None or self.anchor.ok)
        )


def verify(
    db: Database, actor: Actor, check_data: bool = True, anchor: Anchor | None = None
) -> VerifyResult:
    """Check the hash chain, (unless ``check_data`` is False) the data and the data freezes
    against it, and (given an ``anchor``) that the anchored row still has the anchored hash."""
    actor.require(Capability.READ_AUDIT, "verify the audit trail")
    with db.snapshot() as conn:  # chain, head and tables as of one moment, while others write
        chain = verify_chain(conn, at=None if anchor is None else anchor.seq)
        anchored = None if anchor is None else anchors.check(conn, chain, anchor)
        data = verify_data(conn) if check_data else None
        frozen = tuple(verify_all(conn)) if check_data else None
        return VerifyResult(chain, data, frozen, anchored)


def _resolve_key(db: Database, table: str, key: str) -> str:
    """Accept a trial ID as the key of families and children."""
    if table not in ("families", "children") or key.isdigit():
        return key
    trial_id = key.strip().upper()
    with db.read() as s:
        if table == "families":
            found = s.scalar(select(Family.id).where(Family.trial_id == trial_id))
        else:
            found = s.scalar(select(Child.id).where(Child.trial_id == trial_id))
    if found is None:
        raise NotFound(f"no {table} row with trial ID {key!r}")
    return str(found)


def _mask(
    actor: Actor, words: Masker, table: str, field: str | None, value: str | None
) -> str | None:
    """``value`` of an audit row as ``actor`` may read it: identity values hidden from roles
    that may not read them; for blinded roles, arm-revealing columns masked (the arm, and
    what would replay the allocations: see ``Base.__arm_columns__``) and words naming an
    arm, its team or its services masked in free text."""
    if value is None:
        return None
    model = audit_db.model_for(table)
    if model.__identifiable__ and not actor.can(Capability.READ_IDENTIFIABLE):
        return IDENTIFIABLE
    if actor.blinded and model.__arm_columns__:
        if field is None:  # a whole inserted row: mask its arm columns
            values = json.loads(value)
            for col in model.__arm_columns__:
                if col in values:
                    values[col] = MASKED
            value = json.dumps(values, sort_keys=True, ensure_ascii=False)
        elif field in model.__arm_columns__:
            return MASKED
    return words(value)


def _group_keys(s: Session, table: str, key: str) -> list[str]:
    """Row keys of the grouped audit rows (one per parent record) that hold row ``key``."""
    sample = s.scalar(
        select(AuditLog.row_key)
        .where(
            AuditLog.table_name == table,
            AuditLog.field == GROUPED_FIELD,
            AuditLog.row_key.contains("="),
        )
        .limit(1)
    )
    if sample is None or not key.isdigit():
        return []
    column = sample.split("=", 1)[0]
    t = audit_db.model_for(table).__table__
    (pk,) = audit_db.pk_columns(t)  # type: ignore[arg-type]
    value = s.scalar(select(t.c[column]).where(pk == int(key)))
    return [] if value is None else [grouped_key(column, value)]


def _parents(s: Session, table: str, key: str) -> list[tuple[str, str]]:
    """(table, key) of the records row ``key`` refers to: a record written with its parts
    (``insert_records``) holds them in its own grouped audit row."""
    t: Table = audit_db.model_for(table).__table__  # type: ignore[assignment]
    pks = audit_db.pk_columns(t)
    links = [
        (c, fk.column.table.name)
        for c in t.columns
        for fk in c.foreign_keys
        if audit_db.is_audited(fk.column.table.name)
    ]
    if not links or len(pks) != 1 or not key.isdigit():
        return []
    values = s.execute(select(*(c for c, _name in links)).where(pks[0] == int(key))).first()
    if values is None:
        return []
    return [(name, str(v)) for (_c, name), v in zip(links, values, strict=True) if v is not None]


def _holds(r: AuditLog, table: str, key: str) -> bool:
    """Whether grouped audit row ``r`` holds row ``key`` of ``table``."""
    if r.field != GROUPED_FIELD:
        return False
    held = expand_audit_row(r.table_name, r.row_key, r.new_value or "")
    return any(name == table and k == key for name, k, _row in held)


def history(db: Database, actor: Actor, table: str, key: str) -> list[AuditRecord]:
    """Every audit row of one record, oldest first."""
    actor.require(Capability.READ_AUDIT, "read the audit trail")
    return history_rows(db, actor, table, key)


def history_rows(db: Database, actor: Actor, table: str, key: str) -> list[AuditRecord]:
    """``history`` without the READ_AUDIT check, for callers that have checked the actor may
    read this one record (``noim.services.record_view.record_history``: a record of their
    sites); every mask of ``history`` applies."""
    try:
        audit_db.model_for(table)
    except KeyError:
        raise NotFound(f"no table {table!r}; see docs/data-model.md for table names") from None
    key = _resolve_key(db, table, key)
    with db.read(actor) as s:
        if table == "service_use" and key.isdigit() and hides_service_use(s, actor, int(key)):
            return []  # as for a record that does not exist
        words = arm_word_masker(s, actor)
        keys = [key, *_group_keys(s, table, key)]
        where = [and_(AuditLog.table_name == table, AuditLog.row_key.in_(keys))]
        where += [
            and_(
                AuditLog.table_name == name,
                AuditLog.row_key == parent,
                AuditLog.field == GROUPED_FIELD,
            )
            for name, parent in _parents(s, table, key)
        ]
        rows = [
            r
            for r in s.scalars(select(AuditLog).where(or_(*where)).order_by(AuditLog.seq))
            if (r.table_name == table and r.row_key == key) or _holds(r, table, key)
        ]
        return [
            AuditRecord(
                seq=r.seq,
                recorded_at=r.recorded_at,
                user=r.user_name,
                role=r.role,
                action=r.action,
                table=r.table_name,
                key=r.row_key,
                field=r.field,
                old=_mask(actor, words, r.table_name, r.field, r.old_value),
                new=_mask(actor, words, r.table_name, r.field, r.new_value),
                reason=words(r.reason),
            )
            for r in rows
        ]
