"""Verifying data freezes: the stored datasets against the hashes recorded when they were made.

A freeze is intact when

1. every stored dataset (its uncompressed canonical text) still hashes to the ``sha256``
   stored beside it in ``data_freeze_datasets``;
2. the hash over all its datasets' hashes (``content_hash``) is the ``content_sha256`` of
   its ``data_freezes`` row; and
3. that hash is also the ``content_sha256`` the audit trail recorded when the freeze was
   made (the ``data_freezes`` insert row), and that audit row is unchanged (it still
   matches its own hash, and the next row, or the chain's head, still links to it).

Check 3 catches an attacker who edits a dataset and recomputes and stores its hash and the
freeze's content hash too: the audit row cannot be changed to match without rewriting the
hash chain from that row to its head (which ``noim audit verify`` and an anchor kept
outside the database catch).

This module is the one place the check lives: ``noim.extract._frozen.load`` (every reader
of a freeze: extracts, bundles, reports, analysis scripts) calls :func:`check` on the
datasets it loaded, hashing the text it decompresses anyway; ``noim freeze verify``
(:func:`verify_stored`) and ``noim audit verify`` (:func:`verify_all`) hash every dataset
of one freeze or of all of them.  Messages name the freeze and the dataset, never a value
(a blinded role must not learn an arm from an error message).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from noim.db.audit import chain_hash
from noim.db.models import AuditHead, AuditLog, DataFreeze, DataFreezeDataset
from noim.domain.exceptions import FreezeTampered

#: how ``data_freeze_datasets.content`` is encoded (see docs/data-freezes.md)
FORMAT = "json-columns+zlib"
#: datasets fetched per round trip when every dataset is hashed (they can be megabytes)
_STREAM = 4


def text_sha256(text: bytes, salt: str | None = None) -> str:
    """The SHA-256 of a dataset's canonical (uncompressed) text, after the freeze's secret
    ``salt`` (hex; None for a freeze made before salts, revision 0007)."""
    h = hashlib.sha256()
    if salt is not None:
        h.update(bytes.fromhex(salt))
    h.update(text)
    return h.hexdigest()


def content_hash(hashes: Mapping[str, str]) -> str:
    """The freeze's content hash: SHA-256 over ``name:sha256`` lines, in name order."""
    text = "".join(f"{name}:{hashes[name]}\n" for name in sorted(hashes))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def unpack(content: bytes, fmt: str) -> bytes:
    """The canonical text of a stored dataset (``ValueError`` when it cannot be read)."""
    if fmt != FORMAT:
        raise ValueError(f"freeze dataset format {fmt!r}: expected {FORMAT!r}")
    try:
        return zlib.decompress(content)
    except zlib.error as exc:
        raise ValueError(f"not a zlib stream ({exc})") from None


# --------------------------------------------------------------------------- what was recorded


@dataclass(frozen=True)
class Recorded:
    """What the database holds about one freeze, besides its datasets' content."""

    freeze_id: int
    label: str
    content_sha256: str
    row_counts: dict[str, Any]
    #: dataset name -> (stored sha256, stored rows)
    datasets: dict[str, tuple[str, int]]
    #: the audit row that recorded the freeze's creation (None: none found)
    audit_seq: int | None
    #: the content hash that audit row holds (None: none, or unreadable)
    audited_sha256: str | None
    #: why the audit row cannot be trusted (None: it is sound)
    audit_problem: str | None
    #: the secret salt of the dataset hashes (None: a freeze made before salts)
    salt: str | None = None


def _audit_rows(conn: Connection, keys: list[str]) -> dict[str, Any]:
    """The audit insert rows of the freezes ``keys`` (row keys), by row key."""
    rows = conn.execute(
        select(AuditLog.__table__)
        .where(
            AuditLog.table_name == DataFreeze.__tablename__,
            AuditLog.action == "insert",
            AuditLog.field.is_(None),
            AuditLog.row_key.in_(keys),
        )
        .order_by(AuditLog.seq)
    ).mappings()
    found: dict[str, Any] = {}
    for row in rows:
        found.setdefault(row["row_key"], row)  # the first insert is the freeze's creation
    return found


def _links(conn: Connection, seqs: Iterable[int]) -> dict[int, str | None]:
    """For each audit row ``seq``: the ``prev_hash`` of the row after it, or the chain head's
    hash when it is the last row (None: neither exists)."""
    wanted = sorted(set(seqs))
    if not wanted:
        return {}
    after = dict(
        conn.execute(
            select(AuditLog.seq, AuditLog.prev_hash).where(
                AuditLog.seq.in_([s + 1 for s in wanted])
            )
        ).all()
    )
    head = conn.execute(
        select(AuditHead.last_seq, AuditHead.last_hash).where(AuditHead.id == 1)
    ).one_or_none()
    out: dict[int, str | None] = {}
    for seq in wanted:
        if seq + 1 in after:
            out[seq] = after[seq + 1]
        elif head is not None and head.last_seq == seq:
            out[seq] = head.last_hash
        else:
            out[seq] = None
    return out


def _audited(row: Any, link: str | None) -> tuple[str | None, str | None]:
    """(the content hash audit row ``row`` recorded, what is wrong with the row or None)."""
    seq = row["seq"]
    if chain_hash(row["prev_hash"], row) != row["hash"]:
        return None, f"audit row {seq}, which recorded it, was changed after it was written"
    if link != row["hash"]:
        return None, (
            f"audit row {seq}, which recorded it, no longer links to the rest of the hash "
            "chain (run `noim audit verify`)"
        )
    try:
        value = json.loads(row["new_value"])["content_sha256"]
    except (TypeError, ValueError, KeyError):
        return None, f"audit row {seq}, which recorded it, holds no content hash"
    if not isinstance(value, str):
        return None, f"audit row {seq}, which recorded it, holds no content hash"
    return value, None


def recorded(conn: Connection, freeze_ids: Iterable[int] | None = None) -> dict[int, Recorded]:
    """What is recorded about freezes ``freeze_ids`` (every freeze when None), by id: a fixed
    number of statements whatever the number of freezes."""
    f, d = DataFreeze, DataFreezeDataset
    stmt = select(f.id, f.label, f.content_sha256, f.row_counts, f.salt).order_by(f.id)
    sets = select(d.freeze_id, d.name, d.sha256, d.rows)
    if freeze_ids is not None:
        ids = sorted(set(freeze_ids))
        stmt = stmt.where(f.id.in_(ids))
        sets = sets.where(d.freeze_id.in_(ids))
    freezes = conn.execute(stmt).all()
    datasets: dict[int, dict[str, tuple[str, int]]] = {fid: {} for fid, *_ in freezes}
    for fid, name, sha, rows in conn.execute(sets):
        datasets.setdefault(fid, {})[name] = (sha, int(rows))
    audit = _audit_rows(conn, [str(fid) for fid, *_ in freezes])
    links = _links(conn, (row["seq"] for row in audit.values()))
    out: dict[int, Recorded] = {}
    for fid, label, sha, counts, salt in freezes:
        row = audit.get(str(fid))
        seq: int | None = None
        audited: str | None = None
        problem: str | None = "the audit trail holds no record of its creation"
        if row is not None:
            seq = int(row["seq"])
            audited, problem = _audited(row, links.get(seq))
        out[fid] = Recorded(
            freeze_id=fid,
            label=label,
            content_sha256=sha,
            row_counts=dict(counts or {}),
            datasets=datasets.get(fid, {}),
            audit_seq=seq,
            audited_sha256=audited,
            audit_problem=problem,
            salt=salt,
        )
    return out


# --------------------------------------------------------------------------- the check


@dataclass(frozen=True)
class DatasetCheck:
    """One dataset of a freeze whose content was hashed."""

    name: str
    rows: int
    ok: bool
    problem: str | None = None


@dataclass(frozen=True)
class FreezeCheck:
    """The verification of one freeze: ``ok`` when nothing failed."""

    freeze_id: int
    label: str
    #: the content hash the freeze row records
    content_sha256: str
    #: the audit row that recorded the freeze's creation
    audit_seq: int | None
    #: the datasets whose content was hashed (all of them, or those a reader loaded)
    datasets: tuple[DatasetCheck, ...]
    #: what failed, one sentence each, naming datasets but never a value
    problems: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        return f"data freeze {self.freeze_id} ({self.label!r})"

    def raise_if_failed(self) -> None:
        """Raise ``FreezeTampered`` (one line: the freeze and what failed) unless ``ok``."""
        if self.problems:
            raise FreezeTampered(
                f"{self.describe()} fails verification: {'; '.join(self.problems)}; it was "
                "changed behind noim's back and is not read (see `noim freeze verify "
                f"{self.freeze_id}`)"
            )


def check(rec: Recorded, hashed: Mapping[str, str | None]) -> FreezeCheck:
    """Compare the hashes of the datasets just read (``hashed``: name -> SHA-256 of its
    canonical text, None when it could not be unpacked) with what ``rec`` recorded.

    Datasets not in ``hashed`` enter the content hash with their stored ``sha256``.
    """
    problems: list[str] = []
    checks: list[DatasetCheck] = []
    for name in sorted(hashed):
        sha = hashed[name]
        stored = rec.datasets.get(name)
        rows = stored[1] if stored is not None else 0
        problem = None
        if sha is None:
            problem = f"dataset {name} cannot be decompressed"
        elif stored is None:
            problem = f"dataset {name} is not recorded with the freeze"
        elif sha != stored[0]:
            problem = f"dataset {name} does not match the hash recorded when the freeze was made"
        elif name in rec.row_counts and rec.row_counts[name] != rows:
            problem = f"dataset {name}'s row count differs from the freeze's row counts"
        checks.append(DatasetCheck(name, rows, problem is None, problem))
        if problem is not None:
            problems.append(problem)
    for name in sorted(set(rec.row_counts) - set(rec.datasets)):
        problems.append(f"dataset {name} is missing")
    hashes = {name: sha for name, (sha, _rows) in rec.datasets.items()}
    hashes.update({name: sha for name, sha in hashed.items() if sha is not None})
    recomputed = content_hash(hashes)
    # a dataset whose own hash fails already explains a content hash that fails
    if recomputed != rec.content_sha256 and not problems:
        problems.append("its datasets' hashes do not combine to its recorded content hash")
    if rec.audit_problem is not None:
        problems.append(rec.audit_problem)
    elif recomputed != rec.audited_sha256 and not problems:
        problems.append(
            "its datasets do not hash to the content hash the audit trail recorded when it "
            f"was made (audit row {rec.audit_seq}): the datasets and their stored hashes "
            "were changed"
        )
    elif rec.content_sha256 != rec.audited_sha256:
        problems.append(
            "its recorded content hash differs from the one the audit trail recorded when it "
            f"was made (audit row {rec.audit_seq})"
        )
    return FreezeCheck(
        freeze_id=rec.freeze_id,
        label=rec.label,
        content_sha256=rec.content_sha256,
        audit_seq=rec.audit_seq,
        datasets=tuple(checks),
        problems=tuple(problems),
    )


def _hash_stored(
    conn: Connection, recs: Mapping[int, Recorded]
) -> dict[int, dict[str, str | None]]:
    """freeze id -> dataset name -> SHA-256 of its stored text, every dataset of the freezes,
    streamed a few datasets at a time (one statement)."""
    d = DataFreezeDataset
    freeze_ids = list(recs)
    out: dict[int, dict[str, str | None]] = {fid: {} for fid in freeze_ids}
    if not freeze_ids:
        return out
    result = conn.execution_options(yield_per=_STREAM).execute(
        select(d.freeze_id, d.name, d.format, d.content)
        .where(d.freeze_id.in_(freeze_ids))
        .order_by(d.freeze_id, d.name)
    )
    for partition in result.partitions():
        for fid, name, fmt, content in partition:
            try:
                out[fid][name] = text_sha256(unpack(bytes(content), fmt), recs[fid].salt)
            except ValueError:
                out[fid][name] = None
    return out


def verify_stored(conn: Connection, freeze_id: int) -> FreezeCheck | None:
    """Hash every dataset of freeze ``freeze_id`` and check it (None: no such freeze)."""
    rec = recorded(conn, [freeze_id]).get(freeze_id)
    if rec is None:
        return None
    return check(rec, _hash_stored(conn, {freeze_id: rec})[freeze_id])


def verify_all(conn: Connection) -> list[FreezeCheck]:
    """Every freeze, oldest first, each dataset hashed (a fixed number of statements)."""
    recs = recorded(conn)
    hashed = _hash_stored(conn, recs)
    return [check(rec, hashed[fid]) for fid, rec in recs.items()]
