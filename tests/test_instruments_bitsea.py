"""The BITSEA scored by its definition file, one test per rule; cut-offs as configuration."""

from __future__ import annotations

import pytest

from noim.instruments import (
    CutoffTable,
    InstrumentError,
    classify,
    load,
    load_cutoffs,
    parse_cutoffs,
    score,
)

COMPETENCE = (1, 5, 10, 13, 15, 19, 20, 22, 25, 29, 31)
PROBLEM = tuple(i for i in range(1, 43) if i not in COMPETENCE)


def answers(value: int | None) -> dict[int, int | None]:
    return dict.fromkeys(range(1, 43), value)


def test_item_key_is_the_published_one() -> None:
    d = load("bitsea")
    scales = {s.code: s for s in d.scales}
    assert scales["competence"].items == COMPETENCE
    assert scales["problem"].items == PROBLEM and len(PROBLEM) == 31
    assert set(d.items) == set(range(1, 43))
    assert all(item.allowed == (0, 1, 2) and not item.reverse for item in d.items.values())


def test_totals_are_sums_over_their_items() -> None:
    assert score("bitsea", answers(2)) == {"problem": 62, "competence": 22}
    assert score("bitsea", answers(0)) == {"problem": 0, "competence": 0}
    responses = answers(0)
    for i in (2, 3, 42):
        responses[i] = 2
    responses[1], responses[31] = 1, 2
    assert score("bitsea", responses) == {"problem": 6, "competence": 3}


def test_problem_total_allows_three_missing_items_prorated() -> None:
    responses = answers(1)
    for i in (2, 3, 4):
        responses[i] = None  # 28 of 31 answered, all 1: 28 x 31/28 = 31
    assert score("bitsea", responses)["problem"] == 31
    responses[6] = None  # 4 missing: more than 10%
    assert score("bitsea", responses)["problem"] is None
    assert score("bitsea", responses)["competence"] == 11


def test_competence_total_allows_one_missing_item_prorated() -> None:
    responses = answers(2)
    responses[1] = None  # 10 of 11 answered, sum 20: 20 x 11/10 = 22
    assert score("bitsea", responses)["competence"] == 22
    responses[5] = None
    assert score("bitsea", responses)["competence"] is None


def test_proration_rounds_half_up() -> None:
    responses = answers(0)
    responses[1] = None
    for i in COMPETENCE[1:8]:
        responses[i] = 2
    responses[COMPETENCE[8]] = 1  # 15 over 10 answered: 15 x 11/10 = 16.5 -> 17
    assert score("bitsea", responses)["competence"] == 17
    assert round(16.5) == 16  # what half-to-even would have given
    responses = answers(None)
    for i in PROBLEM[:28]:
        responses[i] = 2 if i in PROBLEM[:14] else 1  # 42 over 28: 42 x 31/28 = 46.5 -> 47
    assert score("bitsea", responses)["problem"] == 47


def test_values_outside_0_to_2_are_refused() -> None:
    with pytest.raises(InstrumentError, match="item 7: got 3; expected one of 0, 1, 2 or None"):
        score("bitsea", {7: 3})
    with pytest.raises(InstrumentError, match="item 43"):
        score("bitsea", {43: 1})


# --- cut-offs -------------------------------------------------------------------------

# Test values only (NOT the manual's): each band differs so a wrong lookup shows.
TABLE = """
instrument = "bitsea"
source = "test table"
verified = true

[scales.problem]
direction = "at_or_above"
flag = "possible_problem"
otherwise = "no_problem_flag"

[scales.competence]
direction = "at_or_below"
flag = "possible_deficit"
otherwise = "no_deficit_flag"

[[bands]]
sex = "male"
age_months = [12, 17]
problem = 15
competence = 10

[[bands]]
sex = "male"
age_months = [18, 23]
problem = 14
competence = 13

[[bands]]
sex = "male"
age_months = [24, 29]
problem = 16
competence = 14

[[bands]]
sex = "male"
age_months = [30, 35]
problem = 17
competence = 15

[[bands]]
sex = "female"
age_months = [12, 17]
problem = 13
competence = 11

[[bands]]
sex = "female"
age_months = [18, 23]
problem = 12
competence = 14

[[bands]]
sex = "female"
age_months = [24, 29]
problem = 11
competence = 16

[[bands]]
sex = "female"
age_months = [30, 35]
problem = 10
competence = 17
"""


@pytest.fixture
def table() -> CutoffTable:
    return parse_cutoffs(TABLE, "test")


@pytest.mark.parametrize(
    ("sex", "age", "problem_cut", "competence_cut"),
    [
        ("male", 12, 15, 10),
        ("male", 17, 15, 10),
        ("male", 18, 14, 13),
        ("male", 23, 14, 13),
        ("male", 24, 16, 14),
        ("male", 30, 17, 15),
        ("male", 35, 17, 15),
        ("female", 12, 13, 11),
        ("female", 17, 13, 11),
        ("female", 18, 12, 14),
        ("female", 29, 11, 16),
        ("female", 30, 10, 17),
        ("female", 35, 10, 17),
    ],
)
def test_cutoff_lookup_at_band_edges(
    table: CutoffTable,
    sex: str,
    age: int,
    problem_cut: int,
    competence_cut: int,
) -> None:
    def flags(problem: int, competence: int) -> dict[str, str | None]:
        return classify(
            "bitsea",
            {"problem": problem, "competence": competence},
            sex=sex,
            age_months=age,
            table=table,
        )

    assert flags(problem_cut, competence_cut) == {
        "problem": "possible_problem",  # at the 75th centile cut-off: flagged
        "competence": "possible_deficit",  # at the 15th centile cut-off: flagged
    }
    assert flags(problem_cut - 1, competence_cut + 1) == {
        "problem": "no_problem_flag",
        "competence": "no_deficit_flag",
    }


@pytest.mark.parametrize(("sex", "age"), [("male", 11), ("female", 36), ("unknown", 20)])
def test_no_flag_outside_the_bands(table: CutoffTable, sex: str, age: int) -> None:
    result = classify(
        "bitsea", {"problem": 60, "competence": 0}, sex=sex, age_months=age, table=table
    )
    assert result == {"problem": None, "competence": None}


def test_no_flag_for_a_missing_score(table: CutoffTable) -> None:
    result = classify(
        "bitsea",
        {"problem": None, "competence": float("nan")},
        sex="male",
        age_months=20,
        table=table,
    )
    assert result == {"problem": None, "competence": None}
    with pytest.raises(InstrumentError, match=r"age_months: got 20\.5"):
        classify("bitsea", {}, sex="male", age_months=20.5, table=table)  # type: ignore[arg-type]


def test_shipped_table_covers_both_sexes_and_four_bands() -> None:
    t = load_cutoffs("bitsea")
    assert "manual" in t.source
    for sex in ("male", "female"):
        bands = sorted((b.min_age_months, b.max_age_months) for b in t.bands if b.sex == sex)
        assert bands == [(12, 17), (18, 23), (24, 29), (30, 35)]
    if t.verified:  # once the manual's values are entered, every band has both cut-offs
        assert all(set(b.thresholds) == {"problem", "competence"} for b in t.bands)
    else:  # until then no threshold is invented and no flag is raised
        assert all(not b.thresholds for b in t.bands)
        assert classify(
            "bitsea", {"problem": 62, "competence": 0}, sex="female", age_months=20
        ) == {"problem": None, "competence": None}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("age_months = [18, 23]", "age_months = [17, 23]", 1), "overlaps 12-17 months"),
        (('direction = "at_or_below"', 'direction = "below"', 1), "expected one of at_or_above"),
        (("problem = 14", "problm = 14", 1), r"unknown key\(s\) \['problm'\]"),
        (('sex = "female"', 'sex = "f"', 1), "sex 'f'"),
    ],
)
def test_bad_cutoff_tables_are_refused(change: tuple[str, str, int], message: str) -> None:
    old, new, count = change
    with pytest.raises(InstrumentError, match=message):
        parse_cutoffs(TABLE.replace(old, new, count), "test")
    with pytest.raises(InstrumentError, match="no cut-offs"):
        load_cutoffs("sdq")
