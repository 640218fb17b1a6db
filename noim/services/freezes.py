"""Data freezes: a consistent, hashed snapshot of every analysis and operational dataset
(docs/data-freezes.md).

``create_freeze`` runs every ``noim.extract`` dataset (``noim.extract.snapshot``: the
analysis datasets and the operational ones the interim reports read) as an unblinded
all-sites internal reader inside ONE transaction (on PostgreSQL at REPEATABLE READ; on
SQLite under the write lock ``Database.write`` takes), stores each dataset canonically encoded in
``data_freeze_datasets`` and writes the (audited) ``data_freezes`` row whose
``content_sha256`` is the hash over the datasets' hashes.  Freezes are never updated
or deleted (database triggers refuse it), and ``verify`` (and every read of a freeze)
checks the stored datasets against the hashes recorded on the freeze and in the audit trail.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select

from noim.db import freeze_verify, revisions
from noim.db.base import utcnow
from noim.db.freeze_verify import FreezeCheck
from noim.db.models import AuditHead, DataFreeze, DataFreezeDataset, User
from noim.db.session import Database
from noim.domain.exceptions import NotFound, PermissionDenied, Problem, ValidationError
from noim.domain.roles import Actor, Capability

#: the datasets a freeze stores, in the order they are listed: the analysis datasets, the
#: operational ones the reports read (screening, visits, queries, saes, deviations, exits),
#: and ``allocations``, ``timepoints`` and ``trial`` (docs/data-freezes.md)


def __getattr__(name: str) -> Any:
    """``DATASET_NAMES``: every dataset a freeze stores (``noim.extract.SNAPSHOT_NAMES``),
    read lazily: ``noim.extract`` loads pandas, which the CLI does not load at start-up."""
    if name == "DATASET_NAMES":
        from noim import extract

        return extract.SNAPSHOT_NAMES
    raise AttributeError(name)


@dataclass(frozen=True)
class FrozenDataset:
    name: str
    rows: int
    sha256: str
    format: str
    bytes: int


@dataclass(frozen=True)
class FreezeInfo:
    id: int
    label: str
    created_at: datetime
    as_of: date
    created_by: str | None
    audit_seq: int
    schema_revision: str
    content_sha256: str
    row_counts: dict[str, Any]
    datasets: tuple[FrozenDataset, ...] = ()


def _check_label(label: str | None) -> str:
    text = (label or "").strip()
    if len(text) > 128:
        raise ValidationError(
            [
                Problem(
                    "data freeze",
                    "label",
                    text[:40] + "...",
                    "FRZ-001",
                    "a label of at most 128 characters",
                )
            ]
        )
    return text


def create_freeze(
    db: Database,
    actor: Actor,
    *,
    label: str | None = None,
    datasets: Sequence[str] | None = None,
) -> FreezeInfo:
    """Freeze every dataset now; returns the new freeze (with its datasets).

    ``datasets`` is for tests only (a freeze as an earlier version of noim made it).
    """
    from noim import extract
    from noim.extract import _frozen

    actor.require(Capability.FREEZE_DATA, "make a data freeze")
    datasets = extract.SNAPSHOT_NAMES if datasets is None else datasets
    if actor.user_id is None:
        raise PermissionDenied(f"{actor.describe()}: a freeze records its maker; expected a user")
    text = _check_label(label)
    # PostgreSQL: one snapshot for every read below (SQLite's write lock gives one too)
    with db.write(actor, reason=f"data freeze {text}".strip(), isolation="REPEATABLE READ") as s:
        conn = s.connection()
        audit_seq = int(s.scalar(select(AuditHead.last_seq).where(AuditHead.id == 1)) or 0)
        revision = revisions.database_revision(conn) or ""
        created_at = utcnow()
        as_of = created_at.date()
        frames = extract.snapshot(s, as_of, datasets)
        # a secret, not a statistical draw: it keeps blinded readers from testing guesses
        # of the arms against the dataset hashes
        salt = secrets.token_hex(32)
        encoded = {name: _frozen.encode(frames[name], salt) for name in datasets}
        hashes = {name: sha for name, (_c, sha, _r) in encoded.items()}
        counts = {name: rows for name, (_c, _sha, rows) in encoded.items()}
        freeze = DataFreeze(
            label=text or f"freeze {created_at:%Y-%m-%d %H:%M}",
            created_at=created_at,
            created_by_id=actor.user_id,
            audit_seq=audit_seq,
            schema_revision=revision,
            content_sha256=_frozen.content_hash(hashes),
            row_counts=counts,
            salt=salt,
        )
        s.add(freeze)
        s.flush()
        s.add_all(
            DataFreezeDataset(
                freeze_id=freeze.id,
                name=name,
                format=_frozen.FORMAT,
                content=content,
                sha256=sha,
                rows=rows,
            )
            for name, (content, sha, rows) in encoded.items()
        )
        freeze_id = freeze.id
    return show_freeze(db, actor, freeze_id)


def _info(f: DataFreeze, maker: str | None, datasets: tuple[FrozenDataset, ...] = ()) -> FreezeInfo:
    return FreezeInfo(
        id=f.id,
        label=f.label,
        created_at=f.created_at,
        as_of=f.created_at.date(),
        created_by=maker,
        audit_seq=f.audit_seq,
        schema_revision=f.schema_revision,
        content_sha256=f.content_sha256,
        row_counts=dict(f.row_counts),
        datasets=datasets,
    )


def _require_read(actor: Actor) -> None:
    if not (actor.can(Capability.FREEZE_DATA) or actor.can(Capability.ANALYSE)):
        raise PermissionDenied(
            f"{actor.describe()} may not list data freezes: the {actor.role.value} role lacks "
            f"'{Capability.FREEZE_DATA.value}' and '{Capability.ANALYSE.value}'"
        )


#: who may list freezes and read one's details: those who make or analyse them, and the
#: readers of the interim reports (who choose the freeze a report is built from)
_LISTERS = (
    Capability.FREEZE_DATA,
    Capability.ANALYSE,
    Capability.READ_OPEN_REPORT,
    Capability.READ_CLOSED_REPORT,
)


def _require_list(actor: Actor) -> None:
    if not any(actor.can(c) for c in _LISTERS):
        raise PermissionDenied(
            f"{actor.describe()} may not list data freezes: the {actor.role.value} role lacks "
            + ", ".join(f"'{c.value}'" for c in _LISTERS)
        )


def list_freezes(db: Database, actor: Actor) -> list[FreezeInfo]:
    """Every freeze, oldest first (FREEZE_DATA, ANALYSE, or a report reader)."""
    _require_list(actor)
    with db.read(actor) as s:
        rows = s.execute(
            select(DataFreeze, User.name)
            .join(User, User.id == DataFreeze.created_by_id)
            .order_by(DataFreeze.id)
        ).all()
        return [_info(f, name) for f, name in rows]


def show_freeze(db: Database, actor: Actor, freeze_id: int) -> FreezeInfo:
    """One freeze with its datasets' recorded hashes (``verify`` checks the data against them)."""
    _require_list(actor)
    with db.read(actor) as s:
        row = s.execute(
            select(DataFreeze, User.name)
            .join(User, User.id == DataFreeze.created_by_id)
            .where(DataFreeze.id == freeze_id)
        ).first()
        if row is None:
            raise NotFound(f"data freeze {freeze_id}: no such freeze (see `noim freeze list`)")
        d = DataFreezeDataset
        datasets = s.execute(  # not the content itself: only its size
            select(d.name, d.rows, d.sha256, d.format, func.length(d.content))
            .where(d.freeze_id == freeze_id)
            .order_by(d.name)
        ).all()
        found = tuple(
            FrozenDataset(name, rows, sha, fmt, int(size))
            for name, rows, sha, fmt, size in datasets
        )
        return _info(row[0], row[1], found)


def verify(db: Database, actor: Actor, freeze_id: int) -> FreezeCheck:
    """Recompute every dataset's hash of freeze ``freeze_id`` from its stored content, and the
    freeze's content hash from them; compare with what the freeze records and with what the
    audit trail recorded when it was made (``noim.db.freeze_verify``).

    Who: as for reading freezes (``freeze_data`` or ``analyse``), blinded roles too: the
    result names datasets, never a value.  Returns the check (``ok`` false when it failed).
    """
    _require_read(actor)
    with db.read(actor) as s:
        found = freeze_verify.verify_stored(s.connection(), freeze_id)
    if found is None:
        raise NotFound(f"data freeze {freeze_id}: no such freeze (see `noim freeze list`)")
    return found


def verify_freeze(db: Database, actor: Actor, freeze_id: int) -> bool:
    """True when freeze ``freeze_id`` passes :func:`verify`."""
    return verify(db, actor, freeze_id).ok
