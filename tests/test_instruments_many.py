"""Bulk scoring: score_many gives exactly what score gives, record by record, and both agree
with an independent exact (Fraction) reference of the published rules."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noim.instruments import InstrumentDef, InstrumentError, load, score, score_many
from tests.conftest import examples

CASES = [
    ("sdq", "2-4", range(1, 26)),
    ("sdq", "4-17", range(1, 26)),
    ("sdq", "2-4", range(1, 34)),  # with the impact supplement
    ("sdq", "4-17", range(1, 34)),
    ("sdq", None, range(1, 34)),
    ("bitsea", None, range(1, 43)),
    ("pedsql", "toddler", range(1, 22)),
    ("pedsql", "infant_1_12", range(1, 37)),
    ("pedsql", "infant_13_24", range(1, 46)),
    ("example", None, range(1, 7)),
]


def reference(
    d: InstrumentDef, responses: dict[int, int | None], form: str | None
) -> dict[str, Any]:
    """The published rules, one record at a time, in exact arithmetic (a test oracle)."""
    items = d.items_for(form)
    out: dict[str, Any] = {}
    pooled: dict[str, tuple[int, int, int]] = {}
    for s in d.scales_for(form):
        if s.rule in ("prorated_mean", "prorated_sum"):
            vals = []
            for n in s.items:
                v = responses.get(n)
                if v is not None:
                    lo, hi = min(items[n].allowed), max(items[n].allowed)
                    vals.append(lo + hi - v if items[n].reverse else v)
            out[s.code] = (
                math.floor(Fraction(sum(vals) * len(s.items), len(vals)) + Fraction(1, 2))
                if vals and len(vals) >= s.min_answered
                else None
            )
        elif s.rule == "sum_of_scales":
            parts = [out.get(c) for c in s.scales]
            out[s.code] = None if any(p is None for p in parts) else sum(parts)
        elif s.rule == "recoded_sum":
            used = [*s.items, *([s.gate_item] if s.gate_item else [])]
            if not any(n in responses for n in used):
                continue
            if s.gate_item and responses.get(s.gate_item) in s.gate_zero_when:
                out[s.code] = 0
                continue
            vals = [responses.get(n) for n in s.items]
            table = dict(s.recode)
            out[s.code] = None if None in vals else sum(table[v] for v in vals)  # type: ignore[index]
        else:
            if s.rule == "transformed_mean":
                table = dict(s.transform)
                vals = [table[v] for n in s.items if (v := responses.get(n)) is not None]
                total, count, n_items = sum(vals), len(vals), len(s.items)
                pooled[s.code] = (total, count, n_items)
            else:
                parts3 = [pooled[c] for c in s.scales]
                total = sum(p[0] for p in parts3)
                count = sum(p[1] for p in parts3)
                n_items = sum(p[2] for p in parts3)
            assert s.min_fraction is not None
            need = max(1, math.ceil(s.min_fraction * n_items))
            out[s.code] = float(Fraction(total, count)) if count >= need else None
    return out


def random_block(
    d: InstrumentDef, form: str | None, numbers: list[int], n: int, p_missing: float, seed: int
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    allowed = d.items_for(form)
    block = np.column_stack(
        [rng.choice(allowed[i].allowed, size=n).astype(float) for i in numbers]
    ).reshape(n, len(numbers))
    block[rng.random(block.shape) < p_missing] = np.nan
    return block


@pytest.mark.parametrize(("instrument", "form", "numbers"), CASES)
@settings(max_examples=examples(40), deadline=None)
@given(data=st.data())
def test_score_many_equals_score_row_by_row(
    instrument: str, form: str | None, numbers: range, data: st.DataObject
) -> None:
    d = load(instrument)
    items = data.draw(st.permutations(list(numbers)), label="column order")
    dropped = data.draw(st.sets(st.sampled_from(items), max_size=3), label="items not given")
    items = [i for i in items if i not in dropped]
    n = data.draw(st.integers(0, 12), label="rows")
    p_missing = data.draw(st.sampled_from([0.0, 0.05, 0.3, 0.6, 1.0]), label="missingness")
    block = random_block(d, form, items, n, p_missing, data.draw(st.integers(0, 2**32 - 1)))
    many = score_many(instrument, block, items, form)
    assert all(len(v) == n and v.dtype == np.float64 for v in many.values())
    for r in range(n):
        responses = {
            i: None if math.isnan(x) else int(x) for i, x in zip(items, block[r], strict=True)
        }
        one = score(instrument, responses, form)
        assert one == reference(d, responses, form)
        assert set(one) == set(many)
        for scale, value in one.items():
            x = many[scale][r]
            if value is None:
                assert math.isnan(x), (scale, r)
            else:
                assert x == value, (scale, r, x, value)


def test_half_up_rounding_is_exact_in_bulk() -> None:
    # SDQ emotional (3, 8, 13, 16, 24): 2 of 4 answered -> 2.5 -> 3; 3 of 4 -> 3.75 -> 4;
    # 7 over 5 -> 7; 1 over 3 -> 1.67 -> 2; 1 of 4 -> 1.25 -> 1
    rows = [
        [np.nan, 1, 1, 0, 0],
        [np.nan, 2, 1, 0, 0],
        [2, 2, 1, 1, 1],
        [np.nan, np.nan, 1, 0, 0],
        [np.nan, 1, 0, 0, 0],
    ]
    result = score_many("sdq", np.array(rows), [3, 8, 13, 16, 24])
    assert result["emotional"].tolist() == [3.0, 4.0, 7.0, 2.0, 1.0]
    assert np.isnan(result["conduct"]).all() and np.isnan(result["total_difficulties"]).all()
    assert "impact" not in result  # no impact item given: the supplement is absent


def test_items_not_given_count_as_missing() -> None:
    block = np.ones((3, 21))
    result = score_many("pedsql", block[:, :18], list(range(1, 19)), "toddler")
    assert np.isnan(result["school"]).all() and (result["psychosocial"] == 75.0).all()
    assert (result["total"] == 75.0).all()


def test_item_numbers_may_be_numpy_integers_in_any_order() -> None:
    block = np.tile(np.arange(25) % 3, (4, 1)).astype(float)
    items = np.arange(1, 26)
    ordered = score_many("sdq", block, items)  # type: ignore[arg-type]
    flipped = score_many("sdq", block[:, ::-1], items[::-1])  # type: ignore[arg-type]
    assert ordered.keys() == flipped.keys()
    assert all((ordered[k] == flipped[k]).all() for k in ordered)
    assert (
        ordered["total_difficulties"][0]
        == score("sdq", dict(zip(range(1, 26), [i % 3 for i in range(25)], strict=True)))[
            "total_difficulties"
        ]
    )


def test_bad_blocks_are_refused_with_every_problem() -> None:
    block = np.zeros((10, 3))
    block[3, 1], block[7, 1] = 5, 2.5
    block[9, 2] = np.inf
    with pytest.raises(InstrumentError) as info:
        score_many("sdq", block, [1, 2, 40], "adult")
    message = str(info.value)
    assert "form 'adult': expected one of 2-4, 4-17" in message
    assert "item 2: got row 3: 5, row 7: 2.5; expected one of 0, 1, 2 or NaN (missing)" in message
    assert "column 2: item 40: expected an item number 1-33" in message
    with pytest.raises(InstrumentError, match="column 1: item 1 is given twice"):
        score_many("sdq", np.zeros((2, 2)), [1, 1])
    with pytest.raises(InstrumentError, match="item 1: got row 0: inf"):
        score_many("sdq", np.full((1, 1), np.inf), [1])
    with pytest.raises(InstrumentError, match=r"shape \(2, 3\); expected \(n_assessments, 2\)"):
        score_many("sdq", np.zeros((2, 3)), [1, 2])
    with pytest.raises(InstrumentError, match="form None: expected one of infant_1_12"):
        score_many("pedsql", np.zeros((1, 1)), [1])
    many = np.zeros((8, 1))
    many[:, 0] = 9
    with pytest.raises(InstrumentError, match="row 4: 9 and 3 more"):
        score_many("sdq", many, [1])


def test_40000_sdq_assessments_score_in_one_call() -> None:
    """The bulk path at import size (timed in benchmarks/import.py, not here)."""
    rng = np.random.default_rng(4)
    block = np.hstack([rng.integers(0, 3, (40_000, 25)), rng.integers(0, 4, (40_000, 8))]).astype(
        float
    )
    block[rng.random(block.shape) < 0.05] = np.nan
    result = score_many("sdq", block, list(range(1, 34)), "2-4")
    assert len(result["total_difficulties"]) == 40_000
    row = {
        n: (None if np.isnan(v) else int(v)) for n, v in zip(range(1, 34), block[123], strict=True)
    }
    expected = score("sdq", row, "2-4")
    got = {k: (None if np.isnan(v[123]) else v[123]) for k, v in result.items()}
    assert got == expected
