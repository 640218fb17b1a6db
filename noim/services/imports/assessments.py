"""Import kind ``assessments``: completed instruments, long (one row per item response) or wide
(one row per assessment).

Long format columns: ``child_id, timepoint, instrument, form, respondent, date, item, value,
missing_reason`` (``form`` and ``missing_reason`` may be empty or absent; an empty ``value``
is a missing answer, with ``missing_reason`` or else ``not_answered``).  Rows are grouped
into assessments by (child_id, timepoint, instrument, form, respondent, date).  Wide format
(recognised by its header: no ``item`` column, and columns ``item_1``, ``item_2`` ...): one
row per assessment, one ``item_<n>`` column per item, each cell a value, a missing-data code
(``dont_know`` ...) or empty (not answered; for an optional item, such as the SDQ impact
supplement, not given).

The rules are those of ``noim assessment add`` (``record_assessment``), and the date
rules (ASM-007, ASM-008), respondent rule, visit linking and visit completion are the
very same functions.  Everything is set-based: a few queries whatever the file's size,
and numpy over the columns.  An assessment already stored (same child, timepoint,
instrument, respondent and date, not voided) with the same form and responses is
skipped; with different ones it is a conflict (IMP-010).  Item responses and derived
scores are audited with one grouped audit row per assessment
(``noim.db.audit.insert_rows_grouped``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from noim import instruments
from noim.domain.codes import RESPONSE_MISSING_REASONS
from noim.domain.roles import Actor, Capability
from noim.services.assessments import (
    allowed_respondents,
    date_problems,
    registered_instruments,
    timepoint_codes,
)
from noim.services.imports.assessments_write import against_stored, writer
from noim.services.imports.base import ImportContext, KindBase, Plan, resolve_children
from noim.services.imports.reader import Cells, CsvData, parse_date

KEY_COLUMNS = ("child_id", "timepoint", "instrument", "form", "respondent", "date")
WIDE_ITEM = re.compile(r"^item_([1-9][0-9]*)$")
CELL_RULE = "IMP-005"  # a cell that is not a number / date / value at all
_IntArray = np.ndarray


def is_wide(header: Sequence[str]) -> bool:
    """A wide file has no ``item`` column and at least one ``item_<n>`` column."""
    return "item" not in header and any(WIDE_ITEM.match(h) for h in header)


@dataclass
class _Keys:
    """Per file row: validated key components (codes into ``*_u`` lists; -1 when bad)."""

    child: _IntArray
    timepoint: np.ndarray  # object arrays, one value per row
    instrument: _IntArray
    form: np.ndarray
    respondent: np.ndarray
    date: np.ndarray
    ok: np.ndarray
    #: raw codes of the six key columns and their cardinalities (rows with equal texts group)
    codes: list[tuple[_IntArray, int]]


class AssessmentsKind(KindBase):
    name = "assessments"
    description = "completed instruments: one row per item response, or one per assessment (wide)"
    required: tuple[str, ...] = (
        "child_id",
        "timepoint",
        "instrument",
        "respondent",
        "date",
        "item",
        "value",
    )
    optional: tuple[str, ...] = ("form", "missing_reason")
    capability = Capability.WRITE_ASSESSMENTS

    def columns_ok(self, header: Sequence[str]) -> list[str]:
        if not is_wide(header):
            return super().columns_ok(header)
        out = []
        required = [c for c in KEY_COLUMNS if c != "form"]
        missing = [c for c in required if c not in header]
        if missing:
            out.append(f"missing column(s) {', '.join(missing)}")
        unknown = [h for h in header if h and h not in KEY_COLUMNS and not WIDE_ITEM.match(h)]
        if unknown:
            out.append(
                f"unknown column(s) {', '.join(unknown)}; the wide assessments format has "
                + ", ".join(KEY_COLUMNS)
                + " and one item_<n> column per item"
            )
        return out

    def plan(self, s: Session, actor: Actor, data: CsvData, ctx: ImportContext) -> Plan:
        cells = Cells(data, ctx.dates, CELL_RULE)
        wide = is_wide(data.header)
        ctx.progress("validate", 0, 4)
        defs, keys = _keys(s, actor, cells)
        ctx.progress("validate", 1, 4)
        entries = _entries(cells, wide, keys, defs)
        ctx.progress("validate", 2, 4)
        groups = _group(s, cells, keys, entries, defs, wide)
        ctx.progress("validate", 3, 4)
        new, unchanged = against_stored(s, cells, groups, defs)
        ctx.progress("validate", 4, 4)
        if cells.problems:
            problems = sorted(cells.problems, key=lambda p: int(p.record.split()[1]))
            return Plan(problems, len(new), unchanged, unit="assessment")
        return writer(s, actor, groups, new, unchanged, defs, ctx)


ASSESSMENTS = AssessmentsKind()


# --------------------------------------------------------------------------- row keys


def _fan_out(
    cells: Cells,
    codes: _IntArray,
    bad: dict[int, tuple[str, str, str]],
    column: str,
) -> None:
    """A problem for every row whose code is in ``bad`` (code -> (value, expected, rule))."""
    if not bad:
        return
    rows = np.flatnonzero(np.isin(codes, np.fromiter(bad, dtype=np.int64)))
    for i in rows.tolist():
        value, expected, rule = bad[int(codes[i])]
        cells.problem(i, column, value, expected, rule)


def _factorize(values: Sequence[str]) -> tuple[_IntArray, list[str]]:
    codes, uniques = pd.factorize(np.asarray(values, dtype=object))
    return codes.astype(np.int64), [str(u) for u in uniques]


def _keys(
    s: Session, actor: Actor, cells: Cells
) -> tuple[list[instruments.InstrumentDef | None], _Keys]:
    data = cells.data
    n = data.n_rows
    ok = np.ones(n, dtype=bool)

    # children: resolved once per distinct ID, problems fanned out to every row
    child_codes, child_u = data.factorized("child_id")
    mini = CsvData(data.source, data.sha256, ["child_id"], {"child_id": child_u}, len(child_u), 0)
    mini_cells = Cells(mini, cells.dates, CELL_RULE)
    refs = resolve_children(s, actor, mini_cells, "child_id", "record assessments for", "IMP-004")
    _fan_out(
        cells,
        child_codes,
        {int(p.record.split()[1]): (str(p.value), p.expected, p.rule) for p in mini_cells.problems},
        "child_id",
    )
    child_ids = np.array([r.id if r is not None else -1 for r in refs], dtype=np.int64)
    child = child_ids[child_codes] if n else np.zeros(0, dtype=np.int64)
    ok &= child >= 0

    # timepoints
    known = timepoint_codes(s)
    tp_codes, tp_u = data.factorized("timepoint")
    expected = "one of " + ", ".join(known)
    bad = {
        k: (v, expected + (" (the cell is empty)" if not v else ""), "ASM-006")
        for k, v in enumerate(tp_u)
        if v not in known
    }
    _fan_out(cells, tp_codes, bad, "timepoint")
    ok &= ~np.isin(tp_codes, np.fromiter(bad, dtype=np.int64))

    # instruments (ASM-001 unknown, ASM-009 not registered in this database)
    ins_codes, ins_u = data.factorized("instrument")
    registered = registered_instruments(s)
    defs: list[instruments.InstrumentDef | None] = []
    bad = {}
    for k, v in enumerate(ins_u):
        d = None
        try:
            d = instruments.load(v.lower())
        except instruments.InstrumentError:
            empty = " (the cell is empty)" if not v else ""
            bad[k] = (v, "one of " + ", ".join(instruments.available()) + empty, "ASM-001")
        if d is not None and (d.code, d.version) not in registered:
            bad[k] = (
                v,
                "an instrument registered in this database (run `noim db upgrade`)",
                "ASM-009",
            )
            d = None
        defs.append(d)
    _fan_out(cells, ins_codes, bad, "instrument")
    ins = np.array([k if defs[k] is not None else -1 for k in range(len(defs))], dtype=np.int64)
    instrument = ins[ins_codes] if n else np.zeros(0, dtype=np.int64)
    ok &= instrument >= 0

    # form and respondent: checked per (instrument, value) pair
    forms = _pair_check(cells, instrument, defs, "form", _form_problem, lower=False)
    resp = _pair_check(cells, instrument, defs, "respondent", _respondent_problem, lower=True)
    ok &= forms[1] & resp[1]
    raw = [(child_codes, len(child_u)), (tp_codes, len(tp_u)), (ins_codes, len(ins_u))]
    raw += [forms[2], resp[2]]

    # dates: parsed once per distinct value
    date_codes, date_u = data.factorized("date")
    parsed = [parse_date(v, cells.dates) if v else None for v in date_u]
    bad = {
        k: (v, _date_expected(cells.dates, v), CELL_RULE)
        for k, v in enumerate(date_u)
        if parsed[k] is None
    }
    _fan_out(cells, date_codes, bad, "date")
    ok &= ~np.isin(date_codes, np.fromiter(bad, dtype=np.int64))
    dates = np.array([*parsed, None], dtype=object)[date_codes]
    raw.append((date_codes, len(date_u)))
    return defs, _Keys(
        child, np.array(tp_u, dtype=object)[tp_codes], instrument, forms[0], resp[0], dates, ok, raw
    )


def _date_expected(style: str, value: str) -> str:
    if not value:
        return "a date (the cell is empty)"
    if style == "dmy":
        return "a date as DD/MM/YYYY (the file declares dates=dmy) or YYYY-MM-DD"
    return "a date as YYYY-MM-DD (declare day-first dates with '# noim-import: dates=dmy')"


def _form_problem(d: instruments.InstrumentDef, value: str) -> tuple[str | None, str | None]:
    if not value:
        return None, None
    if d.forms and value not in d.forms:
        return None, f"a form of {d.code}: one of {', '.join(d.forms)} (or empty)"
    return value, None


def _respondent_problem(d: instruments.InstrumentDef, value: str) -> tuple[str | None, str | None]:
    allowed = allowed_respondents(d)
    if value not in allowed:
        empty = " (the cell is empty)" if not value else ""
        return None, f"a respondent of {d.code}: one of {', '.join(allowed)}{empty}"
    return value, None


def _pair_check(
    cells: Cells,
    instrument: _IntArray,
    defs: list[instruments.InstrumentDef | None],
    column: str,
    check: object,
    lower: bool,
) -> tuple[np.ndarray, np.ndarray, tuple[_IntArray, int]]:
    """Check ``column`` against each row's instrument, once per distinct (instrument, value)."""
    codes, uniques = cells.data.factorized(column)
    if lower:
        uniques = [u.lower() for u in uniques]
    pair = (instrument + 1) * (len(uniques) + 1) + codes
    inverse, pairs = pd.factorize(pair)  # hashed: no sort of a million rows
    values = np.full(len(pairs), None, dtype=object)
    bad: dict[int, tuple[str, str, str]] = {}
    rule = "ASM-002" if column == "form" else "ASM-003"
    for k, p in enumerate(pairs.tolist()):
        k_ins, k_val = divmod(p, len(uniques) + 1)
        d = defs[k_ins - 1] if k_ins > 0 else None
        if d is None:  # the instrument is bad: only an empty respondent can be told
            if column == "respondent" and not uniques[k_val]:
                bad[p] = ("", "a respondent type (the cell is empty)", rule)
            continue
        value, problem = check(d, uniques[k_val])  # type: ignore[operator]
        values[k] = value
        if problem is not None:
            bad[p] = (uniques[k_val], problem, rule)
    _fan_out(cells, pair, bad, column)
    ok = ~np.isin(pair, np.fromiter(bad, dtype=np.int64))
    return values[inverse.reshape(-1)], ok, (codes, len(uniques))


# --------------------------------------------------------------------------- item responses


@dataclass
class _Entries:
    """One per item response: its file row, column, item, value (NaN missing), reason code."""

    row: _IntArray
    column: list[str] | str
    item_column: str
    item: _IntArray
    value: np.ndarray
    reason: _IntArray  # index into RESPONSE_MISSING_REASONS, -1 none
    value_texts: Sequence[str]
    ok: np.ndarray


def _entries(
    cells: Cells, wide: bool, keys: _Keys, defs: list[instruments.InstrumentDef | None]
) -> _Entries:
    data = cells.data
    n = data.n_rows
    reasons = {r: k for k, r in enumerate(RESPONSE_MISSING_REASONS)}
    if wide:
        item_cols = [(int(m.group(1)), h) for h in data.header if (m := WIDE_ITEM.match(h))]
        grid = np.array([data.column(h) for _n, h in item_cols], dtype=object).T.reshape(-1)
        row = np.repeat(np.arange(n, dtype=np.int64), len(item_cols))
        item = np.tile(np.array([k for k, _h in item_cols], dtype=np.int64), n)
        present = grid != ""  # an empty cell: a missing answer (filled below) or an item not given
        row, item, grid = row[present], item[present], grid[present]
        columns: list[str] | str = _wide_columns(item)
        value_texts: Sequence[str] = grid.tolist()
        reason_texts: Sequence[str] = [""] * len(value_texts)
        value_factors = _factorize(value_texts)
        reason_factors = _factorize(reason_texts)
        item_ok = np.ones(len(row), dtype=bool)
    else:
        row = np.arange(n, dtype=np.int64)
        columns = "value"
        item_codes, item_u = data.factorized("item")
        parsed = np.array([_int(v) for v in item_u], dtype=np.int64)
        bad = {
            k: (v, "an item number (a whole number from 1)", CELL_RULE)
            for k, v in enumerate(item_u)
            if parsed[k] < 1
        }
        _fan_out(cells, item_codes, bad, "item")
        item = parsed[item_codes] if n else np.zeros(0, dtype=np.int64)
        item_ok = item >= 1
        value_texts = data.cells("value")
        reason_texts = data.cells("missing_reason")
        value_factors = data.factorized("value")
        reason_factors = data.factorized("missing_reason")
    # values: a number, empty (missing) or, in wide files, a missing-data code
    value_codes, value_u = value_factors
    value_of = np.full(len(value_u), np.nan)
    reason_in_value = np.full(len(value_u), -1, dtype=np.int64)
    bad = {}
    for k, v in enumerate(value_u):
        if not v:
            continue
        if wide and v.lower() in reasons:
            reason_in_value[k] = reasons[v.lower()]
            continue
        try:
            value_of[k] = float(v)
        except ValueError:
            value_of[k] = np.nan
        if math.isnan(value_of[k]) or math.isinf(value_of[k]):
            value_of[k] = np.nan
            expected = "a number, a missing-data code or empty" if wide else "a number, or empty"
            bad[k] = (v, expected, CELL_RULE)
    size = len(value_codes)
    value = value_of[value_codes] if size else np.zeros(0)
    value_ok = ~np.isin(value_codes, np.fromiter(bad, dtype=np.int64))
    for i in np.flatnonzero(~value_ok).tolist():
        k = int(value_codes[i])
        cells.problem(int(row[i]), _col(columns, i), value_u[k], bad[k][1], CELL_RULE)
    # missing reasons
    reason_codes, reason_u = reason_factors
    reason_of = np.array(
        [reasons.get(v.lower(), -2) if v else -1 for v in reason_u], dtype=np.int64
    )
    reason = reason_of[reason_codes] if size else np.zeros(0, dtype=np.int64)
    if wide:
        reason = reason_in_value[value_codes] if size else reason
    expected = "one of " + ", ".join(RESPONSE_MISSING_REASONS)
    for i in np.flatnonzero(reason == -2).tolist():
        cells.problem(int(row[i]), "missing_reason", reason_texts[i], expected, "ASM-004")
    for i in np.flatnonzero((reason >= 0) & ~np.isnan(value)).tolist():
        cells.problem(
            int(row[i]),
            "missing_reason",
            reason_texts[i],
            f"no missing reason for an answered item (value {value_texts[i]})",
            "ASM-005",
        )
    ok = item_ok & value_ok & (reason != -2) & ~((reason >= 0) & ~np.isnan(value))
    # item and value allowed by the row's instrument (ASM-002)
    ins = keys.instrument[row] if size else np.zeros(0, dtype=np.int64)
    top = max((max(d.items) for d in defs if d is not None), default=1)
    usable = ok & (ins >= 0)
    item_known = np.zeros((len(defs) + 1, top + 2), dtype=bool)
    allowed = np.zeros((len(defs) + 1, top + 2, len(value_u) + 1), dtype=bool)
    for k, d in enumerate(defs):
        if d is None:
            continue
        for number, item_def in d.items.items():
            item_known[k, number] = True
            allowed[k, number, :] = [
                math.isnan(x) or x in item_def.allowed for x in [*value_of.tolist(), math.nan]
            ]
    clipped = np.clip(item, 0, top + 1)
    unknown = usable & ~item_known[ins, clipped]
    for i in np.flatnonzero(unknown).tolist():
        d = defs[int(ins[i])]
        assert d is not None
        cells.problem(
            int(row[i]),
            _col(columns, i, item_column=True),
            str(int(item[i])) if not wide else value_texts[i],
            f"an item number of {d.code} (1-{max(d.items)})",
            "ASM-002",
        )
    usable &= ~unknown
    not_allowed = usable & ~allowed[ins, clipped, value_codes]
    for i in np.flatnonzero(not_allowed).tolist():
        d = defs[int(ins[i])]
        assert d is not None
        choices = ", ".join(map(str, d.items[int(item[i])].allowed))
        cells.problem(
            int(row[i]),
            _col(columns, i),
            value_texts[i],
            f"a value of {d.code} item {int(item[i])}: one of {choices}, or empty when missing",
            "ASM-002",
        )
    ok = usable & ~not_allowed
    return _Entries(row, columns, "item", item, value, reason, value_texts, ok)


def _wide_columns(item: _IntArray) -> list[str]:
    names = {k: f"item_{k}" for k in np.unique(item).tolist()}
    return [names[k] for k in item.tolist()]


def _col(columns: list[str] | str, i: int, item_column: bool = False) -> str:
    if isinstance(columns, str):
        return "item" if item_column else columns
    return columns[i]


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return -1


# --------------------------------------------------------------------------- assessments


@dataclass
class _Groups:
    """The file's assessments (groups of rows), with their responses as matrices."""

    row_group: _IntArray  # per file row, -1 when its key is bad
    first_row: _IntArray
    child: _IntArray
    timepoint: list[str]
    instrument: _IntArray
    form: list[str | None]
    respondent: list[str]
    date: list[date]
    ok: np.ndarray  # every row of the group is valid
    present: np.ndarray  # (groups, items) item given in the file
    value: np.ndarray  # NaN missing
    reason: np.ndarray  # -1 none
    entry_row: np.ndarray  # file row of each (group, item), -1 when not given


def _group(
    s: Session,
    cells: Cells,
    keys: _Keys,
    entries: _Entries,
    defs: list[instruments.InstrumentDef | None],
    wide: bool,
) -> _Groups:
    data = cells.data
    key = np.zeros(data.n_rows, dtype=np.int64)
    for codes, size in keys.codes:
        key = key * (size + 1) + codes
    row_group = np.full(data.n_rows, -1, dtype=np.int64)
    codes, _uniques = pd.factorize(key[keys.ok])
    row_group[keys.ok] = codes
    n = int(codes.max()) + 1 if codes.size else 0
    first_row = np.full(n, -1, dtype=np.int64)
    valid_rows = np.flatnonzero(keys.ok)
    first_row[codes[::-1]] = valid_rows[::-1]
    first = first_row.tolist()
    top = max((max(d.items) for d in defs if d is not None), default=1) + 2
    group_ok = np.ones(n, dtype=bool)
    eg = row_group[entries.row] if entries.row.size else np.zeros(0, dtype=np.int64)
    group_ok[eg[(eg >= 0) & ~entries.ok]] = False  # a group with a bad entry
    bad_rows = np.flatnonzero(~_rows_ok(cells, data.n_rows))
    group_ok[row_group[bad_rows][row_group[bad_rows] >= 0]] = False
    use = entries.ok & (eg >= 0)
    flat = eg * top + entries.item
    if wide:
        counts = np.bincount(row_group[valid_rows], minlength=max(n, 1))
        for i in valid_rows[counts[row_group[valid_rows]] > 1].tolist():
            g = int(row_group[i])
            if first[g] != i:
                group_ok[g] = False
                cells.problem(
                    i,
                    "child_id",
                    data.column("child_id")[i],
                    f"one row per assessment (row {data.line(first[g])} has the same child, "
                    "timepoint, instrument, form, respondent and date)",
                    "IMP-011",
                )
        use &= counts[np.maximum(eg, 0)] == 1
    else:
        dup = pd.Series(flat).duplicated().to_numpy() & use
        if dup.any():
            firsts = pd.Series(np.arange(flat.size)).groupby(flat).transform("min").to_numpy()
            for i in np.flatnonzero(dup).tolist():
                group_ok[eg[i]] = False
                cells.problem(
                    int(entries.row[i]),
                    "item",
                    str(int(entries.item[i])),
                    f"one row per item of an assessment (row {data.line(int(entries.row[firsts[i]]))} "
                    "has the same item for the same assessment)",
                    "IMP-011",
                )
            use &= ~dup
    present = np.zeros((n, top), dtype=bool)
    value = np.full((n, top), np.nan)
    reason = np.full((n, top), -1, dtype=np.int64)
    entry_row = np.full((n, top), -1, dtype=np.int64)
    ug, ui = eg[use], entries.item[use]
    present[ug, ui] = True
    value[ug, ui] = entries.value[use]
    reason[ug, ui] = entries.reason[use]
    entry_row[ug, ui] = entries.row[use]
    groups = _Groups(
        row_group,
        first_row,
        keys.child[first_row],
        keys.timepoint[first_row].tolist(),
        keys.instrument[first_row],
        keys.form[first_row].tolist(),
        keys.respondent[first_row].tolist(),
        keys.date[first_row].tolist(),
        group_ok,
        present,
        value,
        reason,
        entry_row,
    )
    _date_rules(s, cells, groups)
    return groups


def _rows_ok(cells: Cells, n: int) -> np.ndarray:
    """Rows without any problem so far."""
    ok = np.ones(n, dtype=bool)
    lines = [int(p.record.split()[1]) - cells.data.first_line for p in cells.problems]
    ok[[i for i in lines if 0 <= i < n]] = False
    return ok


def _date_rules(s: Session, cells: Cells, g: _Groups) -> None:
    """ASM-007 and ASM-008 (the rules of record_assessment) for every assessment."""
    found = date_problems(s, g.child.tolist(), g.timepoint, g.date)
    texts = cells.data.cells("date")
    bad: dict[int, tuple[str, str, str]] = {}
    for i, rule, expected in found:
        if i not in bad:
            bad[i] = (texts[int(g.first_row[i])], expected, rule)
            g.ok[i] = False
    _fan_out(cells, g.row_group, bad, "date")
    # one assessment per child, timepoint, instrument, respondent and date (the stored key)
    seen: dict[tuple[int, str, int, str, date], int] = {}
    for k, stored_key in enumerate(
        zip(g.child.tolist(), g.timepoint, g.instrument.tolist(), g.respondent, g.date, strict=True)
    ):
        if stored_key in seen:
            g.ok[k] = False
            row = int(g.first_row[k])
            cells.problem(
                row,
                "form",
                cells.data.column("form")[row],
                f"one form per child, timepoint, instrument, respondent and date (row "
                f"{cells.data.line(int(g.first_row[seen[stored_key]]))} has another)",
                "IMP-011",
            )
        else:
            seen[stored_key] = k
