"""The PedsQL infant and toddler modules scored by their definition file, one test per rule."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import pytest

from noim.instruments import InstrumentError, load, score

#: form -> scale -> number of items, in the order printed on the form
MODULES = {
    "toddler": {"physical": 8, "emotional": 5, "social": 5, "school": 3},
    "infant_1_12": {
        "physical": 6,
        "physical_symptoms": 10,
        "emotional": 12,
        "social": 4,
        "cognitive": 4,
    },
    "infant_13_24": {
        "physical": 9,
        "physical_symptoms": 10,
        "emotional": 12,
        "social": 5,
        "cognitive": 9,
    },
}
PSYCHOSOCIAL = {
    "toddler": ("emotional", "social", "school"),
    "infant_1_12": ("emotional", "social", "cognitive"),
    "infant_13_24": ("emotional", "social", "cognitive"),
}
TRANSFORM = {0: 100, 1: 75, 2: 50, 3: 25, 4: 0}


def scale_items(form: str) -> dict[str, list[int]]:
    out, start = {}, 1
    for scale, n in MODULES[form].items():
        out[scale] = list(range(start, start + n))
        start += n
    return out


def answers(form: str, value: int | None) -> dict[int, int | None]:
    return dict.fromkeys(range(1, sum(MODULES[form].values()) + 1), value)


@pytest.mark.parametrize("form", MODULES)
def test_item_counts_and_order_per_module(form: str) -> None:
    d = load("pedsql")
    scales = {s.code: s for s in d.scales_for(form)}
    for scale, items in scale_items(form).items():
        assert list(scales[scale].items) == items
    assert set(d.items_for(form)) == set(range(1, sum(MODULES[form].values()) + 1))
    assert set(scales) == {*MODULES[form], "physical_health", "psychosocial", "total"}


@pytest.mark.parametrize("form", MODULES)
@pytest.mark.parametrize("value", [0, 1, 2, 3, 4])
def test_items_are_reverse_transformed_to_0_100(form: str, value: int) -> None:
    result = score("pedsql", answers(form, value), form)
    assert set(result.values()) == {TRANSFORM[value]}
    assert all(isinstance(v, float) for v in result.values())


@pytest.mark.parametrize(
    ("form", "scale"),
    [(f, s) for f, scales in MODULES.items() for s in scales],
)
def test_a_scale_needs_half_its_items(form: str, scale: str) -> None:
    items = scale_items(form)[scale]
    need = -(-len(items) // 2)  # at least half: 3 of 5, 2 of 3, 4 of 8, 5 of 9, 2 of 4 ...
    responses = answers(form, None)
    for i in items[: need - 1]:
        responses[i] = 1
    assert score("pedsql", responses, form)[scale] is None
    responses[items[need - 1]] = 3  # now exactly half (or just over): scored
    expected = Fraction(75 * (need - 1) + 25, need)
    assert score("pedsql", responses, form)[scale] == float(expected)


def test_means_are_exact_and_not_rounded() -> None:
    responses = answers("toddler", 0)
    responses[9] = 4  # emotional: 100, 100, 100, 100, 0 ... -> 80
    responses[1], responses[2] = 1, 2  # physical: 75 + 50 + 6 x 100 over 8 = 90.625
    result = score("pedsql", responses, "toddler")
    assert result["emotional"] == 80.0 and result["physical"] == 90.625
    responses[3] = None  # 75 + 50 + 5 x 100 over 7 = 89.2857...
    assert score("pedsql", responses, "toddler")["physical"] == float(Fraction(625, 7))


@pytest.mark.parametrize("form", MODULES)
def test_summaries_are_means_of_all_answered_items(form: str) -> None:
    items = scale_items(form)
    responses = answers(form, 0)  # every item 100 ...
    for i in items["physical"]:
        responses[i] = 4  # ... but physical functioning 0
    responses[items["emotional"][0]] = None
    result = score("pedsql", responses, form)
    n_physical = MODULES[form]["physical"]
    n_symptoms = MODULES[form].get("physical_symptoms", 0)
    answered = sum(MODULES[form].values()) - 1
    # the mean of the answered items, not the mean of the scale means
    assert result["total"] == float(Fraction(100 * (answered - n_physical), answered))
    assert result["psychosocial"] == 100.0
    assert result["physical_health"] == float(Fraction(100 * n_symptoms, n_physical + n_symptoms))
    if form == "toddler":  # the manual: Physical Health Summary = Physical Functioning
        assert result["physical_health"] == result["physical"] == 0.0
    else:  # infants: physical functioning and physical symptoms pooled
        assert 0 < result["physical_health"] < 100  # type: ignore[operator]


@pytest.mark.parametrize("form", MODULES)
def test_psychosocial_pools_emotional_social_and_school_or_cognitive(form: str) -> None:
    items = scale_items(form)
    last = PSYCHOSOCIAL[form][-1]  # school/daycare (toddler) or cognitive (infants)
    responses = answers(form, 0)
    for i in items[last]:
        responses[i] = 4
    n = sum(MODULES[form][s] for s in PSYCHOSOCIAL[form])
    result = score("pedsql", responses, form)
    assert result["psychosocial"] == float(Fraction(100 * (n - MODULES[form][last]), n))
    assert result["physical_health"] == 100.0


def test_summaries_need_half_of_their_items() -> None:
    responses = answers("toddler", None)
    for i in range(1, 11):
        responses[i] = 2  # 10 of 21 answered: below half
    result = score("pedsql", responses, "toddler")
    assert result["total"] is None and result["physical"] == 50.0
    responses[11] = 2
    assert score("pedsql", responses, "toddler")["total"] == 50.0
    only_school = answers("toddler", None) | {19: 0, 20: 0, 21: 0}  # 3 of 13 psychosocial
    result = score("pedsql", only_school, "toddler")
    assert result["school"] == 100.0 and result["psychosocial"] is None


def test_the_module_must_be_named_and_its_items_fit() -> None:
    with pytest.raises(InstrumentError, match="form None: expected one of infant_1_12"):
        score("pedsql", answers("toddler", 1))
    with pytest.raises(InstrumentError, match="form 'adult'"):
        score("pedsql", answers("toddler", 1), "adult")
    with pytest.raises(
        InstrumentError, match="item 22: expected an item number 1-21 on form toddler"
    ):
        score("pedsql", answers("infant_1_12", 1), "toddler")
    with pytest.raises(InstrumentError, match="item 3: got 5; expected one of 0, 1, 2, 3, 4"):
        score("pedsql", {3: 5}, "toddler")


def test_no_half_to_even_rounding_anywhere_in_the_engine() -> None:
    folder = Path(__file__).parents[1] / "noim" / "instruments"
    for path in folder.glob("*.py"):
        code = re.sub(r"round_half_up|#.*", "", path.read_text(encoding="utf-8"))
        assert not re.search(r"\bround\(", code), f"{path.name} calls round()"
