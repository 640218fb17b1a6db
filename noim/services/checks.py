"""Small checks every service shares."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from noim.db.base import utcnow
from noim.db.models import Child
from noim.domain.exceptions import Problem, ReasonRequired, ValidationError


def require_reason(reason: str | None, what: str) -> str:
    """The reason, stripped; ``ReasonRequired`` when there is none."""
    if not reason or not reason.strip():
        raise ReasonRequired(f"{what} needs a reason (--reason)")
    return reason.strip()


def only_fields(record: str, given: Mapping[str, Any], allowed: Iterable[str], rule: str) -> None:
    """Refuse any key of ``given`` that is not in ``allowed``, naming each."""
    allowed = tuple(allowed)
    unknown = [k for k in given if k not in allowed]
    if unknown:
        expected = "one of " + ", ".join(allowed)
        raise ValidationError([Problem(record, k, given[k], rule, expected) for k in unknown])


def correction_reason(
    reason: str | None, record: str, changes: Mapping[str, Any], allowed: Iterable[str], rule: str
) -> str:
    """The reason for correcting ``record`` (required), refusing fields outside ``allowed``."""
    reason = require_reason(reason, f"correcting {record}")
    only_fields(record, changes, allowed, rule)
    return reason


def refuse_voided(record: str, voided_at: datetime | None, rule: str, expected: str) -> None:
    """Refuse to change a voided record: one ``Problem`` on ``voided_at`` under ``rule``."""
    if voided_at is not None:
        raise ValidationError(Problem(record, "voided_at", voided_at.isoformat(), rule, expected))


def refuse_voided_child(child: Child, rule: str) -> None:
    """Refuse to record anything for a voided child (``rule`` is the calling service's)."""
    refuse_voided(
        f"child {child.trial_id}", child.voided_at, rule, "a child whose record is not voided"
    )


def mark_voided(record: Any, reason: str) -> None:
    """Void ``record`` (a row with ``voided_at`` / ``void_reason``) unless it is already voided."""
    if record.voided_at is None:
        record.voided_at, record.void_reason = utcnow(), reason
