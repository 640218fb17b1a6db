"""Downgrades never lose data silently.

Every revision whose ``downgrade()`` drops a table or a column calls ``refuse_data_loss``
before it changes anything.  It counts what the drop would lose (a table's rows, a column's
non-NULL values) and, when anything would be lost, raises ``DataLossRefused`` naming each
table (or column) and its row count, and how to override.  The override is explicit, on the
command that downgrades:

* ``alembic -x allow_data_loss=true downgrade REVISION`` (Alembic's command line), or
* ``noim.db.migrate.downgrade(url, REVISION, allow_data_loss=True)`` (Python).

There is deliberately no environment variable: one left set in a shell would disarm the
guard for every later downgrade.  A refused downgrade changes nothing (Alembic runs the
revisions of one command in one transaction, and the guard runs before the first change of
its revision).  In offline mode (``alembic downgrade --sql``) rows cannot be counted, so the
script is refused unless the override is given.

``tests/test_migrations_data.py`` checks that every revision's ``downgrade()`` calls the
guard for each table and column it drops.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import Connection

#: the name of the override: ``-x allow_data_loss=true`` / ``Config.attributes[OVERRIDE]``
OVERRIDE = "allow_data_loss"
_YES = ("true", "yes", "1", "on")
_NO = ("false", "no", "0", "off", "")


class DataLossRefused(CommandError):
    """A downgrade would drop tables or columns that hold data, and no override was given.

    A ``CommandError``, so Alembic's command line prints the message (``FAILED: ...``) and
    exits 1 without a traceback.
    """


@dataclass(frozen=True)
class Loss:
    """What dropping one table or column would lose."""

    table: str
    column: str | None
    rows: int

    def __str__(self) -> str:
        if self.column is None:
            return f"table {self.table} ({self.rows} row{'s' if self.rows != 1 else ''})"
        return (
            f"column {self.table}.{self.column} ({self.rows} row{'s' if self.rows != 1 else ''} "
            "with a value)"
        )


def override_given(context: Any) -> bool:
    """Whether the running Alembic command was given the override (``context``: alembic.context)."""
    if context.config.attributes.get(OVERRIDE) is True:
        return True
    value = str(context.get_x_argument(as_dictionary=True).get(OVERRIDE, "")).strip().lower()
    if value in _YES:
        return True
    if value in _NO:
        return False
    raise CommandError(f"-x {OVERRIDE}={value!r}: expected true or false")


def losses(
    conn: Connection,
    tables: Iterable[str] = (),
    columns: Iterable[tuple[str, str]] = (),
    seeded: Mapping[str, str] | None = None,
) -> list[Loss]:
    """What dropping ``tables`` and ``columns`` (``(table, column)``) would lose, in one query.

    ``seeded`` maps a table to the SQL condition of rows its revision wrote itself (e.g. the
    audit chain's head row of an empty trail), which are not data and are not counted.
    """
    seeded = dict(seeded or {})
    quote = conn.dialect.identifier_preparer.quote
    parts: list[str] = []
    keys: list[tuple[str, str | None]] = []
    for table in tables:
        where = f" WHERE NOT ({seeded[table]})" if table in seeded else ""
        parts.append(f"SELECT COUNT(*) FROM {quote(table)}{where}")
        keys.append((table, None))
    for table, column in columns:
        parts.append(f"SELECT COUNT(*) FROM {quote(table)} WHERE {quote(column)} IS NOT NULL")
        keys.append((table, column))
    if not parts:
        return []
    # one statement; each count is a scalar subquery so the order of the results is fixed
    sql = "SELECT " + ", ".join(f"({p})" for p in parts)
    counts = conn.execute(text(sql)).one()
    return [
        Loss(table, column, int(n))
        for (table, column), n in zip(keys, counts, strict=True)
        if int(n) > 0
    ]


def refuse_data_loss(
    op: Any,
    revision: str,
    *,
    tables: Iterable[str] = (),
    columns: Iterable[tuple[str, str]] = (),
    seeded: Mapping[str, str] | None = None,
) -> None:
    """Refuse the downgrade of ``revision`` when dropping ``tables`` / ``columns`` loses rows.

    Call it first in ``downgrade()``, with every table and ``(table, column)`` the downgrade
    drops (``op`` is Alembic's ``op``).  Does nothing when the override was given.
    """
    from alembic import context

    if override_given(context):
        return
    tables, columns = list(tables), list(columns)
    if context.is_offline_mode():
        if not tables and not columns:
            return
        dropped = ", ".join([*tables, *(f"{t}.{c}" for t, c in columns)])
        raise DataLossRefused(
            f"refusing to write the downgrade of revision {revision} as SQL: it drops "
            f"{dropped}, and rows cannot be counted offline. Give -x {OVERRIDE}=true to "
            "write the script anyway, and check those tables are empty before running it"
        )
    found = losses(op.get_bind(), tables, columns, seeded)
    if found:
        raise DataLossRefused(
            f"refusing to downgrade revision {revision}: it would drop data: "
            + "; ".join(str(loss) for loss in found)
            + ". Nothing was changed. Back the database up first; to drop the data anyway, "
            f"give the override: `alembic -x {OVERRIDE}=true downgrade TARGET` (Python: "
            f"noim.db.migrate.downgrade(url, TARGET, {OVERRIDE}=True))"
        )
