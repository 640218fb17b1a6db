"""The password policy: at least 12 characters, not the user name, not a common password.

The list of common passwords ships with the package (``data/common-passwords.txt``, one a
line, compared case-insensitively); see that file's header for where it comes from.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from noim.domain.exceptions import Problem, ValidationError

MIN_LENGTH = 12
MAX_LENGTH = 1024


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files("noim.services").joinpath("data/common-passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().casefold()
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    )


def problems(name: str, password: str, field: str = "password") -> list[Problem]:
    """What is wrong with ``password`` for user ``name`` (empty: acceptable).

    The password itself is never echoed in a problem."""
    record = f"user {name}"
    out: list[Problem] = []
    if len(password) < MIN_LENGTH:
        out.append(
            Problem(
                record,
                field,
                f"({len(password)} characters)",
                "PWD-001",
                f"at least {MIN_LENGTH} characters",
            )
        )
    if len(password) > MAX_LENGTH:
        out.append(
            Problem(
                record,
                field,
                f"({len(password)} characters)",
                "PWD-001",
                f"at most {MAX_LENGTH} characters",
            )
        )
    folded = password.casefold()
    if name and (folded == name.casefold() or name.casefold() in folded):
        out.append(
            Problem(
                record,
                field,
                "(hidden)",
                "PWD-002",
                "a password that does not contain the user name",
            )
        )
    if folded in common_passwords() or folded.strip() in common_passwords():
        out.append(
            Problem(
                record,
                field,
                "(hidden)",
                "PWD-003",
                "a password not in the list of common passwords shipped with noim",
            )
        )
    return out


def require_acceptable(name: str, password: str, field: str = "password") -> None:
    found = problems(name, password, field)
    if found:
        raise ValidationError(found)
