"""``noim.db.paging.first_rows``: a page of a statement and its total in one statement."""

from __future__ import annotations

from sqlalchemy import event, select

from noim.db.models import Site
from noim.db.paging import first_rows
from noim.db.session import Database


def test_first_rows_gives_the_page_and_the_total_in_one_statement(db: Database) -> None:
    stmt = select(Site.code).order_by(Site.code)
    with db.read() as s:
        every = [code for (code,) in s.execute(stmt)]
    assert len(every) >= 2
    seen: list[str] = []

    def count(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        with db.read() as s:
            rows, total = first_rows(s, stmt, 1)
            assert [r[0] for r in rows] == every[:1] and total == len(every)
            assert len([x for x in seen if x.lstrip().upper().startswith("SELECT")]) == 1
            rows, total = first_rows(s, stmt, 5, offset=1)
            assert [r[0] for r in rows] == every[1:6] and total == len(every)
            # past the end: no row to carry the count, so it is counted apart
            rows, total = first_rows(s, stmt, 5, offset=len(every) + 3)
            assert rows == [] and total == len(every)
            rows, total = first_rows(s, stmt.where(Site.code == "nowhere"), 5)
            assert rows == [] and total == 0
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
