"""Every scoring rule of the engine, computed once, over many records at a time.

A block of records is a float matrix, one row per record and one column per item
(``items[j]`` is the item number of column ``j``), NaN where an item is unanswered; an item
with no column counts as unanswered in every row.  Each rule turns that matrix into one
float array per scale (NaN = missing score).  Rounding is exact: whole-number scores are
computed from integer sums and counts with integer arithmetic, and means are one IEEE
division of two exactly held numbers (the nearest float to the exact mean).

``noim.instruments.score`` scores one record by calling :func:`compute` with one row, so
single records and bulk imports share this code and agree to the last bit.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from noim.instruments.engine import (
    InstrumentDef,
    InstrumentError,
    ItemDef,
    ScaleDef,
    check_form,
    min_count,
)

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

#: at most this many offending rows are quoted per item in an error message
QUOTED_ROWS = 5


def as_matrix(values: Any, n_items: int) -> Floats:
    """``values`` as a float matrix of ``n_items`` columns, or InstrumentError saying why not."""
    try:
        matrix = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InstrumentError(f"values: expected numbers or NaN ({exc})") from None
    if matrix.ndim != 2 or matrix.shape[1] != n_items:
        raise InstrumentError(
            f"values: got an array of shape {matrix.shape}; expected (n_assessments, {n_items}), "
            "one column per item given"
        )
    return matrix


def validate(d: InstrumentDef, values: Floats, items: Sequence[Any], form: str | None) -> list[str]:
    """Everything wrong with a block of records (empty when it can be scored)."""
    problems = check_form(d, form)
    known = d.items_for(form)
    seen: set[int] = set()
    for j, item in enumerate(items):
        if (
            isinstance(item, bool | np.bool_)
            or not isinstance(item, numbers.Integral)
            or int(item) not in known
        ):
            problems.append(
                f"column {j}: item {item!r}: expected an item number {min(known)}-{max(known)}"
            )
            continue
        number = int(item)
        if number in seen:
            problems.append(f"column {j}: item {number} is given twice")
        seen.add(number)
        column = values[:, j]
        allowed = known[number].allowed
        bad = ~(np.isnan(column) | np.isin(column, allowed))
        if bad.any():
            rows = np.flatnonzero(bad)
            quoted = ", ".join(f"row {r}: {column[r]:g}" for r in rows[:QUOTED_ROWS])
            more = f" and {len(rows) - QUOTED_ROWS} more" if len(rows) > QUOTED_ROWS else ""
            problems.append(
                f"item {number}: got {quoted}{more}; expected one of "
                f"{', '.join(map(str, allowed))} or NaN (missing)"
            )
    return problems


@dataclass
class _Block:
    """A block of records being scored, and the scales scored so far."""

    values: Floats
    pos: dict[int, int]
    items: dict[int, ItemDef]
    out: dict[str, Floats] = field(default_factory=dict)
    #: per item-averaging scale: (sum of transformed answers, answered count, number of items)
    pooled: dict[str, tuple[Floats, Ints, int]] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.values.shape[0])

    def columns(self, numbers: Sequence[int]) -> tuple[list[int], Floats]:
        """The given items among ``numbers`` and their columns (a copy)."""
        present = [i for i in numbers if i in self.pos]
        return present, self.values[:, [self.pos[i] for i in present]]


def _lookup(x: Floats, table: tuple[tuple[int, int], ...]) -> Floats:
    """``x`` mapped through ``table`` (key -> value); NaN stays NaN."""
    keys = np.array([k for k, _ in table], dtype=np.float64)
    vals = np.array([v for _, v in table], dtype=np.float64)
    out = np.full(x.shape, np.nan)
    answered = ~np.isnan(x)
    out[answered] = vals[np.searchsorted(keys, x[answered])]
    return out


def _sum_and_count(x: Floats) -> tuple[Floats, Ints]:
    answered = ~np.isnan(x)
    return np.where(answered, x, 0.0).sum(axis=1), answered.sum(axis=1).astype(np.int64)


def _prorated(s: ScaleDef, b: _Block) -> Floats | None:
    """Mean of the answered items x number of items, rounded half up: prorated_mean/_sum."""
    present, x = b.columns(s.items)
    if present:
        reverse = np.array([b.items[i].reverse for i in present])
        flip = np.array([min(b.items[i].allowed) + max(b.items[i].allowed) for i in present])
        x = np.where(reverse, flip - x, x)
    total, count = _sum_and_count(x)
    k = len(s.items)
    ok = count >= min_count(s, k)
    c = np.where(ok, count, 1)
    # floor(total * k / c + 1/2), in integers: exact, and halves go up.
    rounded = (2 * k * total.astype(np.int64) + c) // (2 * c)
    return np.where(ok, rounded.astype(np.float64), np.nan)


def _sum_of_scales(s: ScaleDef, b: _Block) -> Floats | None:
    missing = np.full(b.n, np.nan)
    total = np.zeros(b.n)
    for code in s.scales:
        total = total + b.out.get(code, missing)  # NaN in any part makes the sum NaN
    return total


def _recoded_sum(s: ScaleDef, b: _Block) -> Floats | None:
    gate = [s.gate_item] if s.gate_item else []
    if not any(i in b.pos for i in (*s.items, *gate)):
        return None  # none of its items given: the scale is absent, not missing
    present, x = b.columns(s.items)
    result: Floats = _lookup(x, s.recode).sum(axis=1)  # NaN when any answer is missing
    if len(present) < len(s.items):
        result[:] = np.nan
    if s.gate_item and s.gate_item in b.pos:
        closed = np.isin(b.values[:, b.pos[s.gate_item]], s.gate_zero_when)
        result = np.where(closed, 0.0, result)
    return result


def _mean(total: Floats, count: Ints, need: int) -> Floats:
    ok = count >= need
    return np.where(ok, total / np.where(ok, count, 1), np.nan)


def _transformed_mean(s: ScaleDef, b: _Block) -> Floats | None:
    _present, x = b.columns(s.items)
    total, count = _sum_and_count(_lookup(x, s.transform))
    b.pooled[s.code] = (total, count, len(s.items))
    return _mean(total, count, min_count(s, len(s.items)))


def _mean_of_items_of_scales(s: ScaleDef, b: _Block) -> Floats | None:
    parts = [b.pooled[c] for c in s.scales]
    total = np.sum([p[0] for p in parts], axis=0)
    count = np.sum([p[1] for p in parts], axis=0).astype(np.int64)
    n_items = sum(p[2] for p in parts)
    return _mean(total, count, min_count(s, n_items))


RULE_FUNCTIONS: dict[str, Callable[[ScaleDef, _Block], Floats | None]] = {
    "prorated_mean": _prorated,
    "prorated_sum": _prorated,
    "sum_of_scales": _sum_of_scales,
    "recoded_sum": _recoded_sum,
    "transformed_mean": _transformed_mean,
    "mean_of_items_of_scales": _mean_of_items_of_scales,
}


def compute(
    d: InstrumentDef, values: Floats, items: Sequence[int], form: str | None
) -> dict[str, Floats]:
    """Score a validated block of records: scale code -> float array (NaN = missing).

    A scale none of whose items is given (the SDQ impact supplement) is left out.
    """
    block = _Block(values, {int(i): j for j, i in enumerate(items)}, d.items_for(form))
    for s in d.scales_for(form):
        result = RULE_FUNCTIONS[s.rule](s, block)
        if result is not None:
            block.out[s.code] = result
    return block.out
