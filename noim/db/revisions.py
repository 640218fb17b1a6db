"""Schema revisions without Alembic: this noim's (read from its revision files) and a database's.

Every command checks, before it reads or writes, that the database is at this noim's
head revision (``require_current``).  Importing Alembic for that costs about a third
of a second, more than the rest of a one-record command, so this module reads the
``revision`` / ``down_revision`` lines of the revision files and the database's
``alembic_version`` table with plain SQL.  ``noim.db.migrate`` (Alembic) remains the
authority for migrating; a test checks that both agree on the revisions and the head.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from noim.domain.exceptions import NotInitialised, SchemaOutOfDate

VERSION_TABLE = "alembic_version"

#: ``revision: str = "0002"`` / ``down_revision: str | Sequence[str] | None = "0001"``
_ASSIGNMENT = re.compile(
    r"""^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(None|"[^"\n]*"|'[^'\n]*'|\([^)]*\)|\[[^\]]*\])""",
    re.MULTILINE,
)


def script_location() -> Path:
    """Folder of the Alembic environment: packaged copy first, then the checkout's ``schema/``."""
    here = Path(__file__).resolve().parent.parent  # .../noim
    packaged = here / "_schema"
    if (packaged / "env.py").exists():
        return packaged
    checkout = here.parent / "schema"
    if (checkout / "env.py").exists():
        return checkout
    raise RuntimeError(f"noim's migrations are missing: neither {packaged} nor {checkout} exists")


@functools.cache
def graph() -> dict[str, tuple[str, ...]]:
    """Every revision this noim's migrations define -> the revisions it follows."""
    out: dict[str, tuple[str, ...]] = {}
    for path in sorted((script_location() / "versions").glob("*.py")):
        if path.name == "__init__.py":
            continue
        found: dict[str, object] = {}
        for m in _ASSIGNMENT.finditer(path.read_text(encoding="utf-8")):
            found.setdefault(m.group(1), ast.literal_eval(m.group(2)))
        revision, down = found.get("revision"), found.get("down_revision")
        if not isinstance(revision, str):
            raise RuntimeError(f'{path}: no `revision = "..."` line; expected one per revision')
        if down is None:
            out[revision] = ()
        elif isinstance(down, str):
            out[revision] = (down,)
        elif isinstance(down, tuple | list):
            out[revision] = tuple(str(d) for d in down)
        else:
            raise RuntimeError(
                f"{path}: down_revision is {down!r}; expected None, a string or a tuple"
            )
    return out


def known() -> set[str]:
    """Every revision this noim knows."""
    return set(graph())


def head() -> str:
    """This noim's newest revision (the one revision no other follows)."""
    followed = {d for downs in graph().values() for d in downs}
    found = sorted(set(graph()) - followed)
    if len(found) != 1:
        raise RuntimeError(f"noim's migrations have {len(found)} heads ({found}); expected one")
    return found[0]


def database_revision(conn: Connection) -> str | None:
    """The revision the database is at (``None``: no noim schema), as Alembic reads it."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    return _one_revision(conn, _versions(conn))


def _versions(conn: Connection) -> list[str]:
    return [
        str(v) for v in conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()
    ]


def _one_revision(conn: Connection, rows: list[str]) -> str | None:
    if len(rows) > 1:
        where = conn.engine.url.render_as_string(hide_password=True)
        raise SchemaOutOfDate(
            f"database {where} is at {len(rows)} schema revisions ({', '.join(sorted(rows))}); "
            "expected one"
        )
    return rows[0] if rows else None


def _gate_revision(engine: Engine) -> str | None:
    """``database_revision`` in one query when the version table exists (every day)."""
    with engine.connect() as conn:
        try:
            rows = _versions(conn)
        except DBAPIError:  # no version table (or no database): ask the catalogue why
            conn.rollback()
            return database_revision(conn)
        return _one_revision(conn, rows)


def newer_than_this_noim(where: str, current: str) -> SchemaOutOfDate:
    """The error for a database at ``current``, a revision this noim does not know."""
    return SchemaOutOfDate(
        f"database {where} is at schema revision {current}, which this noim does not know "
        f"(the newest revision it knows is {head()}): the database was written by a newer "
        "noim; upgrade noim to use it (this noim cannot downgrade it)"
    )


def require_current(engine: Engine) -> None:
    """Refuse a database whose schema is missing, behind or ahead of this noim."""
    where = engine.url.render_as_string(hide_password=True)
    current = _gate_revision(engine)
    if current is None:
        raise NotInitialised(f"database {where} has no noim schema; run `noim init` to create it")
    code_head = head()
    if current == code_head:
        return
    if current in known():
        raise SchemaOutOfDate(
            f"database {where} is at schema revision {current} but this noim needs {code_head}; "
            "back it up, then run `noim db upgrade`"
        )
    raise newer_than_this_noim(where, current)
