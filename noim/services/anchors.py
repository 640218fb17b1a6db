"""Anchors: the audit chain's head, kept outside the database (``noim audit anchor``).

Whoever can write the database directly can rewrite history *consistently*: change old
audit rows, recompute every hash after them and the head, and ``noim audit verify``
alone finds nothing.  An anchor defeats that: it records the sequence number and hash of
the chain's last row at one moment, and the data manager keeps it where the database's
users cannot write (a signed e-mail, the trial master file, a DMC report).  ``noim audit
verify --anchor FILE`` then checks that the chain still holds that row with that hash,
which a rewrite of any row up to it changes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from noim.db.audit_verify import ChainReport, verify_chain
from noim.db.base import utcnow
from noim.db.models import AuditLog, Trial
from noim.db.session import Database
from noim.domain.exceptions import Problem, ValidationError
from noim.domain.roles import Actor, Capability

FORMAT = "noim-audit-anchor/1"


@dataclass(frozen=True)
class Anchor:
    """The chain's head at one moment."""

    trial: str
    seq: int
    hash: str
    #: when row ``seq`` was written (None for an empty chain)
    recorded_at: str | None
    anchored_at: str
    anchored_by: str
    #: the database it was taken from, without user or password (for the reader; not checked)
    database: str
    format: str = FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


@dataclass(frozen=True)
class AnchorReport:
    """What ``verify --anchor`` found: whether row ``anchor.seq`` still has the hash."""

    anchor: Anchor
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def take(db: Database, actor: Actor) -> Anchor:
    """The chain's head now, once the chain up to it verifies (refused otherwise)."""
    actor.require(Capability.READ_AUDIT, "anchor the audit trail")
    with db.snapshot() as conn:
        chain = verify_chain(conn)
        if not chain.ok:
            raise ValidationError(
                Problem(
                    "audit_log",
                    "hash",
                    f"row {chain.first_bad_seq}",
                    "chain_intact",
                    f"an intact chain to anchor ({chain.problem}); run `noim audit verify`",
                )
            )
        recorded = conn.scalar(select(AuditLog.recorded_at).where(AuditLog.seq == chain.rows))
        return Anchor(
            trial=_trial(conn),
            seq=chain.rows,
            hash=chain.last_hash or "",
            recorded_at=None if recorded is None else _iso(recorded),
            anchored_at=_iso(utcnow()),
            anchored_by=actor.name,
            database=_identity(db),
        )


def parse(text: str, source: str) -> Anchor:
    """An anchor from the JSON ``noim audit anchor`` wrote (``source`` names it in errors)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        expected = f"the JSON `noim audit anchor` writes ({exc})"
        raise _invalid(source, "(file)", text[:40], expected) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise _invalid(source, "format", got, f'"{FORMAT}"')
    fields: dict[str, Any] = {}
    for name, kind in (
        ("trial", str),
        ("seq", int),
        ("hash", str),
        ("anchored_at", str),
        ("anchored_by", str),
        ("database", str),
    ):
        value = data.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise _invalid(source, name, value, f"a {kind.__name__}")
        fields[name] = value
    if fields["seq"] < 0:
        raise _invalid(source, "seq", fields["seq"], "a row number of 0 or more")
    digest = fields["hash"]
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise _invalid(source, "hash", digest, "64 lower-case hexadecimal digits (SHA-256)")
    recorded = data.get("recorded_at")
    if recorded is not None and not isinstance(recorded, str):
        raise _invalid(source, "recorded_at", recorded, "a time or null")
    return Anchor(recorded_at=recorded, **fields)


def check(conn: Connection, chain: ChainReport, anchor: Anchor) -> AnchorReport:
    """Compare the chain (verified with ``verify_chain(conn, at=anchor.seq)``) with the
    anchor, in the same snapshot."""
    trial = _trial(conn)
    if anchor.trial != trial:
        return AnchorReport(
            anchor, f"the anchor is of trial {anchor.trial}; this database holds trial {trial}"
        )
    if chain.hash_at is not None:
        if chain.hash_at == anchor.hash:
            return AnchorReport(anchor, None)
        return AnchorReport(
            anchor,
            f"audit row {anchor.seq} has hash {chain.hash_at[:16]}... but the anchor taken "
            f"{anchor.anchored_at} by {anchor.anchored_by} records {anchor.hash[:16]}...: "
            f"the history up to row {anchor.seq} was rewritten",
        )
    if chain.ok:
        return AnchorReport(
            anchor,
            f"the chain ends at row {chain.rows} but the anchor taken {anchor.anchored_at} "
            f"records row {anchor.seq}: rows up to the anchor were removed",
        )
    return AnchorReport(
        anchor,
        f"the chain is broken at row {chain.first_bad_seq}, before the anchored row "
        f"{anchor.seq}: the anchor cannot be checked",
    )


def _identity(db: Database) -> str:
    """The database's URL without user or password."""
    url = db.engine.url
    return url._replace(username=None, password=None).render_as_string(hide_password=True)


def _trial(conn: Connection) -> str:
    return conn.scalar(select(Trial.code).where(Trial.id == 1)) or "(no trial)"


def _iso(moment: datetime) -> str:
    stamp = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return stamp.astimezone(UTC).isoformat(timespec="microseconds")


def _invalid(source: str, field: str, value: object, expected: str) -> ValidationError:
    return ValidationError(Problem(f"anchor {source}", field, value, "anchor_format", expected))
