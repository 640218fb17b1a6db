"""The generic rule kinds: a new instrument, with forms, is a data file and no code."""

from __future__ import annotations

import numpy as np
import pytest

from noim.instruments import InstrumentError, engine, vector

DEFINITION = """
code = "demo"
version = "1"
name = "Demo"
forms = ["short", "long"]

[response_scales]
yn = [0, 1]
freq = [0, 1, 2, 3]

[transforms]
freq100 = { 0 = 0, 1 = 33, 2 = 67, 3 = 100 }

[[items]]
range = [1, 4]
scale = "freq"

[[items]]
range = [5, 6]
scale = "yn"
forms = ["long"]

[[scales]]
code = "a"
rule = "transformed_mean"
items = [1, 2]
transform = "freq100"
min_answered_fraction = 0.5

[[scales]]
code = "b"
rule = "transformed_mean"
items = [3, 4]
transform = "freq100"
min_answered_fraction = 1

[[scales]]
code = "pooled"
rule = "mean_of_items_of_scales"
scales = ["a", "b"]
min_answered_fraction = 0.75

[[scales]]
code = "count"
rule = "prorated_sum"
forms = ["long"]
items = [1, 2, 5, 6]
max_missing = 1

[[scales]]
code = "both"
rule = "sum_of_scales"
forms = ["long"]
scales = ["count", "count"]
"""


def demo(text: str = DEFINITION) -> engine.InstrumentDef:
    return engine.parse(text, "demo.toml")


def run(d: engine.InstrumentDef, responses: dict[int, int | None], form: str) -> dict[str, object]:
    return engine.score_with(d, responses, form)


def test_a_new_instrument_with_forms_needs_only_a_file() -> None:
    d = demo()
    assert d.form_required and set(d.items_for("short")) == {1, 2, 3, 4}
    assert set(d.items_for("long")) == {1, 2, 3, 4, 5, 6}
    assert d.items[5].optional and not d.items[1].optional  # the union, for form-less callers
    short = run(d, {1: 3, 2: None, 3: 1, 4: 2}, "short")
    assert short == {"a": 100.0, "b": 50.0, "pooled": pytest.approx(200 / 3)}
    assert short["pooled"] == (100 + 33 + 67) / 3  # one division of exact sums
    long = run(d, {1: 3, 2: 1, 3: 1, 4: None, 5: 1, 6: None}, "long")
    # a: 100, 33 -> 66.5; b needs both items; pooled: 3 of 4 answered; count: 5 over 3 x 4/3
    assert long == {"a": 66.5, "b": None, "pooled": (100 + 33 + 33) / 3, "count": 7, "both": 14}
    assert isinstance(long["count"], int) and isinstance(long["both"], int)
    with pytest.raises(InstrumentError, match="item 5: expected an item number 1-4 on form short"):
        run(d, {5: 1}, "short")


def test_max_missing_bounds_the_proration() -> None:
    d = demo()
    assert run(d, {1: 3, 2: 3, 5: None, 6: None}, "long")["count"] is None
    assert run(d, {1: 3, 2: 3, 5: 1, 6: None}, "long")["count"] == 9  # 7 x 4/3 = 9.33


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'transform = "freq100"\nmin_answered_fraction = 1',
            'transform = "nope"\nmin_answered_fraction = 1',
            "transform 'nope' is not defined",
        ),
        (", 3 = 100 }", " }", r"transform gives no value for \[3\]"),
        ("max_missing = 1", "max_missing = 4", "max_missing 4; expected 0 to 3"),
        (
            "min_answered_fraction = 0.75",
            "min_answered_fraction = 1.5",
            r"expected a fraction in \(0, 1\]",
        ),
        ('scales = ["a", "b"]', 'scales = ["a", "count"]', "uses a scale defined after it"),
        ('scales = ["a", "b"]', 'scales = ["a", "a"]', "its scales share items"),
        ("items = [1, 2, 5, 6]", "items = [1, 2, 5, 5]", "an item is listed twice"),
        (
            'forms = ["long"]\nitems = [1, 2, 5, 6]',
            "items = [1, 2, 5, 6]",
            r"on form short uses undefined item\(s\) \[5, 6\]",
        ),
        ('rule = "prorated_sum"', 'rule = "median"', "rule 'median'; expected one of"),
        ('scale = "yn"', 'scale = "ynm"', "response scale 'ynm' is not defined"),
    ],
)
def test_bad_definitions_are_refused_with_the_reason(old: str, new: str, message: str) -> None:
    assert old in DEFINITION
    with pytest.raises(InstrumentError, match=message):
        demo(DEFINITION.replace(old, new, 1))


def test_pooled_summaries_take_transformed_scales_only() -> None:
    text = DEFINITION.replace('scales = ["a", "b"]', 'scales = ["a", "b"]\n', 1).replace(
        'rule = "sum_of_scales"\nforms = ["long"]\nscales = ["count", "count"]',
        'rule = "mean_of_items_of_scales"\nforms = ["long"]\nscales = ["count"]\nmin_answered_fraction = 0.5',
    )
    with pytest.raises(InstrumentError, match="expected transformed_mean scales only"):
        demo(text)


def test_one_row_and_many_rows_share_the_rules() -> None:
    d = demo()
    block = np.array([[3, np.nan, 1, 2], [0, 0, 0, 0], [np.nan, np.nan, 3, 3]])
    many = vector.compute(d, block, [1, 2, 3, 4], "short")
    for r, row in enumerate(block):
        one = run(d, {i + 1: None if np.isnan(x) else int(x) for i, x in enumerate(row)}, "short")
        for k, v in one.items():
            assert (np.isnan(many[k][r]) and v is None) or many[k][r] == v
