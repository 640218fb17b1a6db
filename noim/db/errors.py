"""Turn database refusals into noim's own errors with a readable message."""

from __future__ import annotations

import re

from sqlalchemy.exc import DBAPIError, IntegrityError

from noim.domain.exceptions import (
    AlreadyExists,
    NoimError,
    Problem,
    RecordProtected,
    ValidationError,
)

_CONSTRAINT_PATTERNS = (
    re.compile(r'constraint "([^"]+)"'),  # PostgreSQL
    re.compile(r"CHECK constraint failed: (\w+)"),  # SQLite
)


def constraint_name(exc: DBAPIError) -> str | None:
    text = str(exc.orig)
    for pattern in _CONSTRAINT_PATTERNS:
        m = pattern.search(text)
        if m:
            return m.group(1)
    return None


def translate(exc: DBAPIError) -> NoimError | None:
    """A ``NoimError`` for a database refusal, or None when it is not one noim expects."""
    text = str(exc.orig)
    first_line = text.strip().splitlines()[0] if text.strip() else text
    if "noim:" in text:
        return RecordProtected(first_line[first_line.index("noim:") :])
    if not isinstance(exc, IntegrityError):
        return None
    name = constraint_name(exc)
    lowered = text.lower()
    if "unique" in lowered or "duplicate key" in lowered:
        detail = re.search(r"Key \(([^)]*)\)=\(([^)]*)\)", text)
        if detail:
            return AlreadyExists(
                f"a record with {detail.group(1)} = {detail.group(2)} already exists"
                + (f" (constraint {name})" if name else "")
            )
        m = re.search(r"UNIQUE constraint failed: ([\w., ]+)", text)
        cols = m.group(1) if m else (name or "a unique key")
        return AlreadyExists(f"a record with the same {cols} already exists")
    if "foreign key" in lowered:
        return ValidationError(
            Problem(
                "database",
                name or "",
                first_line,
                "foreign-key",
                "a reference to an existing record",
            )
        )
    if "check constraint" in lowered or "violates check" in lowered:
        return ValidationError(
            Problem("database", name or "", first_line, name or "check", "values the schema allows")
        )
    if "not null" in lowered:
        return ValidationError(Problem("database", "", first_line, "not-null", "a value"))
    return None
