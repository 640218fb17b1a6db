"""Identifiable details in the audit trail as keyed digests, never in clear.

The audit trail can never be changed, so a name, address or health number written into
it in clear would stay there after it was corrected or erased on request.  Instead, the
audit writer (``noim.db.audit.append``) replaces every identifying value of the identity
tables (``child_identities``, ``birth_parent_identities``, ``carer_identities``: every
column but the row's own key and the link to its person) by a keyed digest::

    "hmac-sha256:" + HMAC-SHA256(record key, "<table>.<column>" + US + canonical JSON value)

under a key of the identity record's own (table ``identity_keys``, 32 random bytes,
created with the record's first audit row).  The trail still proves every change: the
digest of the stored value must equal the audited one (``noim audit verify``), and a
change behind noim's back is found.  Nobody can read a value back from it, and because
every record has its own key, the same name in two records gives unrelated digests.

Erasing a person's details on request (``noim.services.identities.erase``) sets them to
NULL through an ordinary audited change, then deletes the record's key: the digests the
trail holds can no longer be linked to any value, not even by someone who guesses it,
while the hash chain and ``noim audit verify`` stay intact (NULL needs no key).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Table, delete, insert, select, tuple_
from sqlalchemy.engine import Connection

from noim.db.base import Base, utcnow
from noim.db.models.audit import IdentityKey

PREFIX = "hmac-sha256:"
_KEYS: Table = IdentityKey.__table__  # type: ignore[assignment]
_CHUNK = 400


def identifiable_tables() -> dict[str, frozenset[str]]:
    """Identity table name -> its identifying columns (all but its key and its link)."""
    out = {}
    for mapper in Base.registry.mappers:
        model = mapper.class_
        if getattr(model, "__identifiable__", False):
            table: Table = model.__table__
            out[table.name] = frozenset(
                c.name for c in table.columns if not c.primary_key and not c.foreign_keys
            )
    return out


_IDENTIFIABLE: dict[str, frozenset[str]] = {}


def identifying(table: str) -> frozenset[str]:
    """The identifying columns of ``table`` (empty for every other table)."""
    if not _IDENTIFIABLE:
        import noim.db.models  # noqa: F401  (register every model)

        _IDENTIFIABLE.update(identifiable_tables())
    return _IDENTIFIABLE.get(table, frozenset())


def digest(key: bytes, table: str, column: str, value_json: str) -> str:
    """The keyed digest of one value (its canonical JSON text) of ``table.column``."""
    mac = hmac.new(key, f"{table}.{column}\x1f{value_json}".encode(), hashlib.sha256)
    return PREFIX + mac.hexdigest()


def token_json(key: bytes | None, table: str, column: str, value_json: str | None) -> str | None:
    """What the audit trail holds for a value: ``null`` stays ``null`` (it identifies
    nobody); anything else becomes its digest, as a JSON string.  ``key`` None (erased):
    a value cannot be digested."""
    if value_json is None or value_json == "null":
        return value_json
    if key is None:
        raise KeyError(f"{table}: no identity key for a value to audit")
    return json.dumps(digest(key, table, column, value_json))


def load_keys(conn: Connection, table: str, row_keys: Iterable[str]) -> dict[str, bytes]:
    """The keys of identity records ``row_keys`` of ``table`` that have one."""
    wanted = sorted(set(row_keys))
    out: dict[str, bytes] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        for key, value in conn.execute(
            select(IdentityKey.row_key, IdentityKey.key_hex).where(
                IdentityKey.table_name == table, IdentityKey.row_key.in_(chunk)
            )
        ):
            out[str(key)] = bytes.fromhex(value)
    return out


def all_keys(conn: Connection, table: str) -> dict[str, bytes]:
    """Every key of ``table``'s identity records (for ``noim audit verify``)."""
    return {
        str(k): bytes.fromhex(v)
        for k, v in conn.execute(
            select(IdentityKey.row_key, IdentityKey.key_hex).where(IdentityKey.table_name == table)
        )
    }


def _keys_for(conn: Connection, table: str, row_keys: Iterable[str]) -> dict[str, bytes]:
    """Keys of ``row_keys``, creating those that do not exist yet (a new record)."""
    keys = load_keys(conn, table, row_keys)
    new = [
        {
            "table_name": table,
            "row_key": k,
            "key_hex": secrets.token_hex(32),
            "created_at": utcnow(),
        }
        for k in sorted(set(row_keys) - set(keys))
    ]
    if new:
        conn.execute(insert(_KEYS), new)
        keys.update({str(r["row_key"]): bytes.fromhex(str(r["key_hex"])) for r in new})
    return keys


def pseudonymise(conn: Connection, entries: Sequence[Any]) -> list[Any]:
    """``entries`` (``noim.db.audit.AuditEntry``) with every identifying value digested."""
    mine = [e for e in entries if identifying(str(e.table))]
    if not mine:
        return list(entries)
    by_table: dict[str, set[str]] = {}
    for e in mine:
        by_table.setdefault(str(e.table), set()).add(e.key)
    keys = {t: _keys_for(conn, t, ks) for t, ks in by_table.items()}
    out = []
    for e in entries:
        columns = identifying(str(e.table))
        if not columns:
            out.append(e)
            continue
        key = keys[str(e.table)][e.key]
        if e.field is None and e.new is not None:  # a whole row
            values = json.loads(e.new)
            for column in columns & set(values):
                text = json.dumps(values[column], ensure_ascii=False)
                values[column] = json.loads(token_json(key, str(e.table), column, text) or "null")
            new = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            out.append(e._replace(new=new))
        elif e.field in columns:
            out.append(
                e._replace(
                    old=token_json(key, str(e.table), e.field, e.old),
                    new=token_json(key, str(e.table), e.field, e.new),
                )
            )
        else:
            out.append(e)
    return out


def erase_key(conn: Connection, table: str, row_key: str) -> None:
    """Delete the key of one identity record (its details were just set to NULL)."""
    conn.execute(
        delete(_KEYS).where(tuple_(IdentityKey.table_name, IdentityKey.row_key) == (table, row_key))
    )
