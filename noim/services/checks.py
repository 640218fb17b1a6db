"""Small checks every service shares."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

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
