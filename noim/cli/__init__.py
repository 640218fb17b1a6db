"""The ``noim`` command line: a thin shell that parses input, calls one service, formats output."""

from __future__ import annotations

# register the command groups
from noim.cli import (  # noqa: F401
    admin,
    assessments,
    care,
    demo,
    economics,
    freezes,
    imports,
    integrity,
    intervention,
    logins,
    people,
    queries,
    randomisation,
    records,
    reports,
    rules,
    safety,
    screening,
    serve,
    visits,
    voiding,
)
from noim.cli.common import main, noim_cli

__all__ = ["main", "noim_cli"]
