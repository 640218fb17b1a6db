"""The SDQ scored by the official rules, one test per rule; a generic instrument needs no code."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from noim.instruments import InstrumentError, available, load, score

SUBSCALES = {
    "emotional": (3, 8, 13, 16, 24),
    "conduct": (5, 7, 12, 18, 22),
    "hyperactivity": (2, 10, 15, 21, 25),
    "peer": (6, 11, 14, 19, 23),
    "prosocial": (1, 4, 9, 17, 20),
}
REVERSED = (7, 11, 14, 21, 25)


def all_items(value: int) -> dict[int, int | None]:
    return dict.fromkeys(range(1, 26), value)


def test_item_to_subscale_key_is_the_published_one() -> None:
    d = load("sdq")
    for scale in d.scales:
        if scale.code in SUBSCALES:
            assert scale.items == SUBSCALES[scale.code]
    assert sorted(n for n, item in d.items.items() if item.reverse) == list(REVERSED)


@pytest.mark.parametrize("item", REVERSED)
def test_reverse_scored_items(item: int) -> None:
    responses = all_items(0)
    responses[item] = 0  # "not true" on a positive item scores 2
    scale = next(k for k, v in SUBSCALES.items() if item in v)
    others_reversed = sum(1 for i in SUBSCALES[scale] if i in REVERSED and i != item)
    assert score("sdq", responses)[scale] == 2 + 2 * others_reversed
    responses[item] = 2
    assert score("sdq", responses)[scale] == 2 * others_reversed


def test_subscale_needs_three_of_five_items() -> None:
    responses = all_items(1)
    for i in (3, 8, 13):
        responses[i] = None
    assert score("sdq", responses)["emotional"] is None
    responses[13] = 2  # now 3 answered: 1, 1, 2 -> mean 4/3 x 5 = 6.67 -> 7
    assert score("sdq", responses)["emotional"] == 7


def test_rounding_is_half_up_not_half_even() -> None:
    responses = all_items(0)
    responses[3] = None  # 4 answered
    responses[8], responses[13] = 1, 1  # sum 2 of 4: mean 0.5 x 5 = 2.5
    assert score("sdq", responses)["emotional"] == 3
    assert round(2.5) == 2  # what Python's round() would have given
    responses[8] = 2  # sum 3 of 4: 3.75 -> 4
    assert score("sdq", responses)["emotional"] == 4


def test_total_difficulties_missing_when_any_subscale_missing() -> None:
    responses = all_items(1)
    for i in (5, 7, 12):
        responses[i] = None  # conduct unscorable
    result = score("sdq", responses)
    assert result["conduct"] is None
    assert result["total_difficulties"] is None and result["externalising"] is None
    assert result["internalising"] == result["emotional"] + result["peer"]  # type: ignore[operator]
    assert result["prosocial"] is not None


def test_totals_are_sums_of_subscales() -> None:
    result = score("sdq", all_items(2))
    assert result["total_difficulties"] == sum(
        result[s] for s in ("emotional", "conduct", "hyperactivity", "peer")
    )  # type: ignore[misc]
    assert result["externalising"] == result["conduct"] + result["hyperactivity"]  # type: ignore[operator]
    assert "impact" not in result


def test_impact_supplement() -> None:
    responses: dict[int, int | None] = {**all_items(1), 26: 2, 28: 3, 29: 2, 30: 1, 31: 0, 32: 3}
    assert score("sdq", responses)["impact"] == 2 + 1 + 0 + 0 + 2
    responses[26] = 0  # no difficulties: impact 0 whatever else is ticked
    assert score("sdq", responses)["impact"] == 0
    responses[26], responses[30] = 1, None
    assert score("sdq", responses)["impact"] is None


def test_both_forms_score_the_same_and_bad_input_is_refused() -> None:
    responses = {i: (i * 7) % 3 for i in range(1, 26)}
    assert score("sdq", responses, "2-4") == score("sdq", responses, "4-17")
    with pytest.raises(InstrumentError, match="form '11-17': expected one of 2-4, 4-17"):
        score("sdq", responses, "11-17")
    with pytest.raises(InstrumentError, match="item 3: got 5; expected one of 0, 1, 2 or None"):
        score("sdq", {3: 5})
    with pytest.raises(InstrumentError, match="item 40"):
        score("sdq", {40: 1})
    with pytest.raises(InstrumentError, match="instrument 'sdqq'"):
        score("sdqq", {})


@given(st.dictionaries(st.integers(1, 25), st.one_of(st.none(), st.sampled_from([0, 1, 2]))))
def test_scores_stay_within_their_published_ranges(responses: dict[int, int | None]) -> None:
    result = score("sdq", responses)
    for scale in SUBSCALES:
        assert result[scale] is None or 0 <= result[scale] <= 10  # type: ignore[operator]
    assert result["total_difficulties"] is None or 0 <= result["total_difficulties"] <= 40
    assert result["externalising"] is None or 0 <= result["externalising"] <= 20


def test_a_generic_instrument_needs_no_code() -> None:
    assert {"sdq", "example"} <= set(available())
    assert score("example", {1: 3, 2: 3, 3: None, 4: 0, 5: 2, 6: 2}) == {
        "stress": 9,  # 3, 3 answered of 3: mean 3 x 3
        "support": 7,  # item 4 reversed (0 -> 3), 2, 2: mean 7/3 x 3
        "total": 16,
    }
    assert score("example", {1: 3})["stress"] is None
