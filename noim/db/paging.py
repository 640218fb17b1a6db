"""The first rows of a statement and how many it selects in all, in one statement.

A page of a list shows its first rows and the total ("50 of 1,266"). Counting in a second
statement runs the whole query twice (the work queue's due follow-ups: two passes of 13 ms
each at 10,000 families); a window count (``count(*) OVER ()``, computed over every row
the query selects, before ``LIMIT``) gives both in one pass, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session


def first_rows(
    s: Session, stmt: Select[*tuple[Any, ...]], limit: int, offset: int = 0
) -> tuple[list[tuple[Any, ...]], int]:
    """Rows ``offset`` to ``offset + limit`` of ``stmt`` (ordered as it is) and its total.

    A page past the end has no row to carry the count: then the total costs a second
    statement.
    """
    total = func.count().over().label("noim_total")
    rows = s.execute(stmt.add_columns(total).limit(limit).offset(offset)).all()
    if rows:
        return [tuple(row[:-1]) for row in rows], int(rows[0][-1])
    if offset == 0:
        return [], 0
    counted = s.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    return [], int(counted or 0)
