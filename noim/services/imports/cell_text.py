"""The text rules on every cell of an import file, before any row is looked at further.

Each kind names the columns whose cells it stores as text (``text_columns``: CSV column ->
``"table.column"``); their cells get that column's limit (``noim.db.text_rules``): at most
``n`` characters for a ``String(n)`` column, tab / newline / carriage return allowed only for
a free-text (``Text``) column.  Every other cell (dates, numbers, codes, trial IDs) is
single-line text: no control character at all.  ``run_import`` refuses a file with any such
problem before the kind's checks run, so no cell with a NUL or an over-long value reaches a
query or an insert, and SQLite and PostgreSQL give the same rows, columns and rules.

A column is checked in one pass over its distinct cells (the fast reader's codes) or one
join of its cells; cells are looked at one by one only when the column has a problem.
"""

from __future__ import annotations

from collections.abc import Mapping

from noim.db.text_rules import column_limit
from noim.domain import text
from noim.domain.exceptions import Problem
from noim.services.imports.reader import CsvData


def cell_problems(data: CsvData, text_columns: Mapping[str, str]) -> list[Problem]:
    """Every cell of ``data`` that breaks the text rules, by row and column."""
    problems: list[Problem] = []
    for name in data.header:
        if not name:  # (not ``name in data.columns``: that would build the column's list)
            continue
        stored = text_columns.get(name)
        limit = column_limit(stored) if stored is not None else text.SINGLE_LINE
        distinct = data.codes[name][1] if name in data.codes else data.column(name)
        if not text.any_bad(distinct, limit):
            continue
        for i, cell in enumerate(data.column(name)):
            problems += text.problems(data.record(i), name, cell, limit)
    return sorted(problems, key=lambda p: int(p.record.split()[1]))
