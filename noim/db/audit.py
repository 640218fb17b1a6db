"""The audit writer: every insert, update and void of an audited table writes
audit rows in the same transaction, hash-chained to the previous row.

How changes reach it:

* ORM flushes: ``install_listeners`` hooks ``before_flush`` / ``after_flush``
  on noim's session class.  Old values are read from the database before the
  flush and new values after it (one ``SELECT`` per table, not per row), so the
  audit trail holds exactly what was stored.
* Bulk paths: ``insert_rows`` and ``update_rows`` run set-based Core statements
  and audit them the same way.
* Any other DML on an audited table through a noim session is refused.

The rows written are also handed to ``noim.db.touched``, which collects the
children the unit of work touched so the set rules can check just those.

Deletes of audited rows are refused (trial data is voided, never deleted); the
database refuses them too (see ``noim.db.triggers``).

One audit row per inserted row (``field`` NULL, ``new_value`` the whole row as
canonical JSON), one per changed field of an update, one per changed field of
a void (``action = 'void'``, ``reason`` the void reason).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC
from typing import Any, NamedTuple

from sqlalchemy import Table, bindparam, inspect, select, tuple_, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction
from sqlalchemy.sql.dml import UpdateBase

import noim
from noim.db import bulk, text_rules, touched
from noim.db.base import Base, utcnow
from noim.db.identity_audit import pseudonymise
from noim.db.models.audit import AuditHead, AuditLog
from noim.db.triggers import APPEND_ONLY
from noim.domain.exceptions import ReasonRequired, RecordProtected
from noim.domain.roles import Actor

GENESIS_HASH = "0" * 64
_AUDIT_TABLE: Table = AuditLog.__table__  # type: ignore[assignment]
#: audit_log columns in the order ``append`` writes them
_AUDIT_COLUMNS = (
    "seq",
    "recorded_at",
    "tx_id",
    "user_id",
    "user_name",
    "role",
    "action",
    "table_name",
    "row_key",
    "field",
    "old_value",
    "new_value",
    "reason",
    "noim_version",
    "prev_hash",
    "hash",
)
AUDITED_OPTION = "noim_audited"
_CHUNK = 500  # keys per IN (...) list


_MODELS: dict[str, type[Base]] = {}


def _registry() -> dict[str, type[Base]]:
    if not _MODELS:
        import noim.db.models  # noqa: F401  (register every model)

        _MODELS.update({m.class_.__tablename__: m.class_ for m in Base.registry.mappers})
    return _MODELS


def model_for(table_name: str) -> type[Base]:
    """The model class of a table (``KeyError`` when noim has no such table)."""
    return _registry()[table_name]


def is_audited(table: Table | str) -> bool:
    name = table if isinstance(table, str) else table.name
    model = _registry().get(name)
    return model is not None and model.__audited__


def audited_tables() -> list[Table]:
    """Every table whose changes are audited, in dependency order."""
    _registry()
    return [t for t in Base.metadata.sorted_tables if is_audited(t)]


def pk_columns(table: Table) -> list[Any]:
    return list(table.primary_key.columns)


def row_key(values: Sequence[Any]) -> str:
    return "/".join(str(v) for v in values)


# --------------------------------------------------------------------------- the chain


class AuditEntry(NamedTuple):
    """One audit row to append (a named tuple: a million-row import makes many)."""

    action: str
    table: str
    key: str
    field: str | None
    old: str | None
    new: str | None
    reason: str | None


def _text(v: Any) -> str:
    return "\x00" if v is None else str(v)


def chain_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    """SHA-256 of an audit row's content joined to the previous row's hash."""
    return _hash(
        prev_hash,
        row["seq"],
        row["recorded_at"].astimezone(UTC).isoformat(timespec="microseconds"),
        row["tx_id"],
        row["user_id"],
        row["user_name"],
        row["role"],
        (
            row["action"],
            row["table_name"],
            row["row_key"],
            row["field"],
            row["old_value"],
            row["new_value"],
            row["reason"],
            row["noim_version"],
        ),
    )


def _hash(
    prev: str,
    seq: int,
    recorded: str,
    tx_id: str,
    user_id: int | None,
    user_name: str,
    role: str,
    rest: tuple[Any, ...],
) -> str:
    action, table, key, field, old, new, reason, version = rest
    payload = "\x1e".join(
        (
            str(seq),
            recorded,
            tx_id,
            _text(user_id),
            user_name,
            role,
            action,
            table,
            key,
            _text(field),
            _text(old),
            _text(new),
            _text(reason),
            version,
            prev,
        )
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def append(conn: Connection, actor: Actor, tx_id: str, entries: Sequence[AuditEntry]) -> None:
    """Append ``entries`` to the chain, locking its head until the transaction ends.

    Identifying values (names, addresses, health numbers) are written as keyed digests,
    never in clear (``noim.db.identity_audit``).
    """
    if not entries:
        return
    entries = pseudonymise(conn, entries)
    head = conn.execute(
        select(AuditHead.last_seq, AuditHead.last_hash).where(AuditHead.id == 1).with_for_update()
    ).one_or_none()
    if head is None:
        raise RuntimeError("the audit_head row is missing: the database was not created by noim")
    seq, prev = int(head.last_seq), str(head.last_hash)
    now = utcnow()
    recorded = now.isoformat(timespec="microseconds")
    process = _AUDIT_TABLE.c.recorded_at.type._cached_bind_processor(conn.dialect)
    now_param = process(now) if process is not None else now
    role = actor.audit_role or actor.role.value
    who = (tx_id, actor.user_id, actor.name, role)
    version = noim.__version__
    params: list[tuple[Any, ...]] = []
    # the payload _hash builds, with the parts every row of this append shares joined once
    shared = "\x1e".join((recorded, tx_id, _text(actor.user_id), actor.name, role))
    sha256 = hashlib.sha256
    for e in entries:
        seq += 1
        # str(): a table's name is SQLAlchemy's str subclass, which the driver adapts slowly
        rest = (e.action, str(e.table), e.key, e.field, e.old, e.new, e.reason, version)
        payload = "\x1e".join(
            (
                str(seq),
                shared,
                rest[0],
                rest[1],
                rest[2],
                _text(e.field),
                _text(e.old),
                _text(e.new),
                _text(e.reason),
                version,
                prev,
            )
        )
        new_hash = sha256(payload.encode("utf-8")).hexdigest()
        params.append((seq, now_param, *who, *rest, prev, new_hash))
        prev = new_hash
    bulk.executemany(conn, _AUDIT_TABLE.name, _AUDIT_COLUMNS, params)
    conn.execute(update(AuditHead).where(AuditHead.id == 1).values(last_seq=seq, last_hash=prev))


# --------------------------------------------------------------------------- reading rows


def fetch_rows(
    conn: Connection, table: Table, keys: Iterable[tuple[Any, ...]]
) -> dict[str, dict[str, Any]]:
    """Current stored values of the rows with primary keys ``keys``, by row key."""
    pks = pk_columns(table)
    keys = list(keys)
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        if len(pks) == 1:
            where = pks[0].in_([k[0] for k in chunk])
        else:
            where = tuple_(*pks).in_(chunk)
        for r in conn.execute(select(table).where(where)).mappings():
            out[row_key([r[c.name] for c in pks])] = dict(r)
    return out


def _insert_entries(
    table: Table, rows: Mapping[str, Mapping[str, Any]], reason: str | None
) -> list[AuditEntry]:
    enc = bulk.encoder_for(table)
    return [
        AuditEntry("insert", table.name, key, None, None, enc.row(values), reason)
        for key, values in sorted(rows.items(), key=lambda kv: _sort_key(kv[0]))
    ]


def _sort_key(key: str) -> tuple[Any, ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in key.split("/"))


def _change_entries(
    table: Table,
    old_rows: Mapping[str, dict[str, Any]],
    new_rows: Mapping[str, dict[str, Any]],
    reason: str | None,
    only: Iterable[str] | None = None,
) -> list[AuditEntry]:
    """Audit entries for the fields that differ between ``old_rows`` and ``new_rows``.

    ``only`` limits the comparison to the columns an UPDATE set (the others cannot differ).
    """
    entries: list[AuditEntry] = []
    enc = bulk.encoder_for(table)
    has_void = "voided_at" in table.c
    has_completed = "completed_at" in table.c
    wanted = set(only) if only is not None else None
    names = [c.name for c in table.columns if wanted is None or c.name in wanted]
    for key in sorted(new_rows, key=_sort_key):
        old, new = old_rows[key], new_rows[key]
        old_text = {name: enc.value(name, old[name]) for name in names}
        new_text = {name: enc.value(name, new[name]) for name in names}
        changed = [name for name in names if old_text[name] != new_text[name]]
        if not changed:
            continue
        voiding = has_void and old["voided_at"] is None and new["voided_at"] is not None
        row_reason = new["void_reason"] if voiding else reason
        if not row_reason and (
            (has_void and old["voided_at"] is not None)
            or (has_completed and old["completed_at"] is not None)
        ):
            state = "voided" if has_void and old["voided_at"] is not None else "marked complete"
            raise ReasonRequired(
                f"{table.name} row {key} is {state}; changing {', '.join(changed)} needs a reason"
            )
        action = "void" if voiding else "update"
        for name in changed:
            entries.append(
                AuditEntry(
                    action, table.name, key, name, old_text[name], new_text[name], row_reason
                )
            )
    return entries


# --------------------------------------------------------------------------- ORM listeners


def _audited_state(obj: object) -> Table | None:
    table = getattr(type(obj), "__table__", None)
    if isinstance(table, Table) and is_audited(table):
        return table
    return None


def _require_actor(session: Session) -> Actor:
    actor = session.info.get("actor")
    if not isinstance(actor, Actor):
        raise RuntimeError(
            "an audited change was flushed without an acting user; "
            "open the session with Database.write(actor, ...)"
        )
    return actor


def _refuse_rewrite(table: Table) -> None:
    """Written-once tables (allocations, the sealed list) are refused here as well as by the database."""
    if table.name in APPEND_ONLY:
        raise RecordProtected(
            f"{table.name} rows are written once and never changed; record a correction "
            "(e.g. a post-randomisation exclusion) instead"
        )


def _before_flush(session: Session, _ctx: UOWTransaction, _instances: object) -> None:
    if session.info.get("readonly") and (session.new or session.dirty or session.deleted):
        raise RuntimeError("this is a read-only unit of work; use Database.write() to change data")
    for obj in session.deleted:
        table = _audited_state(obj)
        if table is not None:
            raise RecordProtected(
                f"{table.name} rows are never deleted; void the record with a reason instead"
            )
    touched: dict[Table, set[tuple[Any, ...]]] = defaultdict(set)
    for obj in session.dirty:
        table = _audited_state(obj)
        if table is None or not session.is_modified(obj, include_collections=False):
            continue
        _refuse_rewrite(table)
        identity = inspect(obj).identity
        if identity is not None:
            touched[table].add(tuple(identity))
    if touched:
        _require_actor(session)
        conn = session.connection()
        session.info["_audit_old"] = {t: fetch_rows(conn, t, keys) for t, keys in touched.items()}
    else:
        session.info["_audit_old"] = {}


def _after_flush(session: Session, _ctx: UOWTransaction) -> None:
    old_by_table: dict[Table, dict[str, dict[str, Any]]] = session.info.pop("_audit_old", {})
    new_keys: dict[Table, list[tuple[Any, ...]]] = defaultdict(list)
    for obj in session.new:
        table = _audited_state(obj)
        if table is not None:
            # the identity key is assigned only after this hook; read the primary key instead
            new_keys[table].append(tuple(inspect(obj).mapper.primary_key_from_instance(obj)))
    if not new_keys and not old_by_table:
        return
    actor = _require_actor(session)
    conn = session.connection()
    reason = session.info.get("reason")
    entries: list[AuditEntry] = []
    for table in Base.metadata.sorted_tables:
        if table in new_keys:
            inserted = fetch_rows(conn, table, new_keys[table])
            touched.note(session, table, inserted.values())
            entries += _insert_entries(table, inserted, reason)
        if table in old_by_table:
            old = old_by_table[table]
            keys = [tuple(_key_values(table, k)) for k in old]
            updated = fetch_rows(conn, table, keys)
            touched.note(session, table, updated.values())
            entries += _change_entries(table, old, updated, reason)
    append(conn, actor, session.info["tx_id"], entries)


def _key_values(table: Table, key: str) -> list[Any]:
    parts = key.split("/")
    return [
        int(p) if c.type.python_type is int else p
        for c, p in zip(pk_columns(table), parts, strict=True)
    ]


def _guard_dml(state: ORMExecuteState) -> None:
    stmt = state.statement
    if isinstance(stmt, UpdateBase) and not state.execution_options.get(AUDITED_OPTION):
        table = getattr(stmt, "table", None)
        if isinstance(table, Table) and is_audited(table):
            raise RuntimeError(
                f"direct {type(stmt).__name__.upper()} on audited table {table.name}: "
                "use the ORM or noim.db.audit.insert_rows / update_rows so the change is audited"
            )


def install_listeners(session_class: type[Session]) -> None:
    from sqlalchemy import event

    event.listen(session_class, "before_flush", _before_flush)
    event.listen(session_class, "after_flush", _after_flush)
    event.listen(session_class, "do_orm_execute", _guard_dml)


# --------------------------------------------------------------------------- bulk paths


def insert_rows(
    session: Session, model: type[Base], rows: Sequence[Mapping[str, Any]]
) -> list[Any]:
    """Insert many rows with one executemany and audit them; return their primary keys in order.

    Integer primary keys are reserved first (``noim.db.bulk.reserve_ids``), so
    nothing is read back: the audit rows are built from the values as stored
    (each column's canonical encoding).
    """
    if not rows:
        return []
    actor = _require_actor(session)
    table: Table = model.__table__  # type: ignore[assignment]
    text_rules.require_rows(table, rows)
    pks = pk_columns(table)
    if len(pks) != 1:
        raise ValueError(
            f"insert_rows needs a single-column primary key; {table.name} has {len(pks)}"
        )
    pk = pks[0].name
    conn = session.connection()
    complete = bulk.complete_rows(table, rows)
    if bulk.integer_pk(table) is not None and any(r[pk] is None for r in complete):
        ids = iter(bulk.reserve_ids(conn, table, sum(r[pk] is None for r in complete)))
        for r in complete:
            if r[pk] is None:
                r[pk] = next(ids)
    bulk.insert_many(conn, table, complete)
    touched.note(session, table, complete)
    keys = [r[pk] for r in complete]
    if is_audited(table):
        enc = bulk.encoder_for(table)
        reason = session.info.get("reason")
        entries = [
            AuditEntry("insert", table.name, str(r[pk]), None, None, enc.row(r), reason)
            for r in complete
        ]
        append(conn, actor, session.info["tx_id"], entries)
    return keys


def update_rows(
    session: Session,
    model: type[Base],
    changes: Mapping[Any, Mapping[str, Any]],
    reason: str | None = None,
    reread: bool = True,
) -> int:
    """Update many rows by primary key (``{pk: {column: value}}``) and audit each changed field.

    Returns the number of rows whose stored values changed.  The new values are read back
    after the UPDATE so the audit holds what was stored; ``reread=False`` audits the
    values given instead (one query fewer per 500 rows), for callers whose values are
    already of the columns' Python types (``date``, aware ``datetime``, ``str``, ...), which
    encode exactly as the values stored and read back.
    """
    if not changes:
        return 0
    actor = _require_actor(session)
    table: Table = model.__table__  # type: ignore[assignment]
    _refuse_rewrite(table)
    text_rules.require_rows(table, list(changes.values()), keys=list(changes))
    (pk,) = pk_columns(table)
    conn = session.connection()
    keys = [(k,) for k in changes]
    old = fetch_rows(conn, table, keys)
    missing = [str(k) for k in changes if row_key([k]) not in old]
    if missing:
        raise KeyError(f"{table.name}: no rows with key {', '.join(missing[:5])}")
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for key, values in changes.items():
        by_columns[tuple(sorted(values))].append({"_pk": key, **values})
    for columns, params in by_columns.items():
        stmt = (
            update(table).where(pk == bindparam("_pk")).values({c: bindparam(c) for c in columns})
        )
        conn.execute(stmt, params)
    if reread:
        new = fetch_rows(conn, table, keys)
    else:
        new = {row_key([k]): {**old[row_key([k])], **values} for k, values in changes.items()}
    touched.note(session, table, new.values())
    set_columns = {c for values in changes.values() for c in values}
    entries = _change_entries(table, old, new, reason or session.info.get("reason"), set_columns)
    append(conn, actor, session.info["tx_id"], entries)
    return len({e.key for e in entries})
