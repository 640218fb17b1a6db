"""Assessment entry forms from the definition files, the form a child's age calls for, and
the legal vocabulary as choices."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from noim import instruments
from noim.db.models import Assessment
from noim.db.session import Database
from noim.domain.exceptions import ValidationError
from noim.domain.legal import DECISION_TYPES
from noim.services import assessment_entry
from noim.web.choices import PLACEMENT_TYPES, legal_choices
from noim.web.instrument_forms import instrument_form, item_text, parse_responses
from tests.conftest import Actors
from tests.factories import count_rows, family_with_children, rule_ids


def test_sdq_form_has_one_field_per_item_with_labelled_values_and_missing_codes() -> None:
    f = instrument_form("sdq", "4-17")
    assert [i.number for i in f.items] == list(range(1, 34))
    first = f.items[0]
    assert (first.name, first.missing_name) == ("item_1", "missing_1")
    assert first.text == "Considerate of other people's feelings"
    assert [(c.value, c.label) for c in first.choices] == [
        ("0", "0 Not true"),
        ("1", "1 Somewhat true"),
        ("2", "2 Certainly true"),
    ]
    assert [c.value for c in f.items[25].choices] == ["0", "1", "2", "3"]
    assert not first.optional and f.items[25].optional
    assert [c.value for c in f.missing_codes] == [
        "not_answered",
        "dont_know",
        "refused",
        "not_applicable",
        "illegible",
    ]


def test_the_2_to_4_form_shows_its_own_wording() -> None:
    younger = {i.number: i.text for i in instrument_form("sdq", "2-4").items}
    older = {i.number: i.text for i in instrument_form("sdq", "4-17").items}
    assert younger[22] == "Can be spiteful to others"
    assert older[22] == "Steals from home, school or elsewhere"
    assert younger[1] == older[1]
    assert item_text(None, 7, "x") == "Item 7"


def test_pedsql_modules_have_their_own_items_grouped_by_scale() -> None:
    toddler = instrument_form("pedsql", "toddler")
    assert len(toddler.items) == 21
    assert [(s.title, len(s.items)) for s in toddler.sections] == [
        ("Physical", 8),
        ("Emotional", 5),
        ("Social", 5),
        ("School", 3),
    ]
    assert len(instrument_form("pedsql", "infant_13_24").items) == 45
    assert toddler.items[0].choices[4].label == "4 Almost always"
    # interleaved scales keep the printed order in one group
    assert [s.title for s in instrument_form("sdq", "2-4").sections] == ["Items"]


def test_a_form_the_instrument_does_not_have_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        instrument_form("pedsql", None)
    assert rule_ids(info) == {"ASM-002"}


def test_parse_gives_responses_and_missing_reasons() -> None:
    f = instrument_form("sdq", "2-4")
    posted = {f"item_{n}": "1" for n in range(1, 26)}
    posted["item_3"] = ""
    posted["missing_3"] = "dont_know"
    posted["item_4"] = ""
    posted["item_26"] = "0"
    parsed = parse_responses(f, posted)
    assert parsed.responses[1] == 1 and parsed.responses[3] is None and parsed.responses[4] is None
    assert parsed.missing_reasons == {3: "dont_know"}
    assert parsed.responses[26] == 0 and 27 not in parsed.responses  # optional, left blank


def test_parse_names_each_field_not_offered() -> None:
    f = instrument_form("sdq", "2-4")
    with pytest.raises(ValidationError) as info:
        parse_responses(f, {"item_1": "3", "item_2": "x", "missing_5": "lost", "item_26": "3"})
    assert {(p.field, p.rule) for p in info.value.problems} == {
        ("item_1", "WEB-003"),
        ("item_2", "WEB-003"),
        ("missing_5", "WEB-003"),
    }


@given(st.dictionaries(st.integers(1, 25), st.sampled_from([None, 0, 1, 2]), min_size=25))
def test_parsed_entry_scores_as_the_engine_does(answers: dict[int, int | None]) -> None:
    f = instrument_form("sdq", "4-17")
    posted = {f"item_{n}": "" if v is None else str(v) for n, v in answers.items()}
    parsed = parse_responses(f, posted)
    assert instruments.score("sdq", parsed.responses, "4-17") == instruments.score(
        "sdq", answers, "4-17"
    )


@pytest.mark.parametrize(
    ("instrument", "age", "form"),
    [
        ("sdq", 24, "2-4"),
        ("sdq", 47, "2-4"),
        ("sdq", 48, "4-17"),
        ("sdq", 23, None),
        ("pedsql", 1, "infant_1_12"),
        ("pedsql", 12, "infant_1_12"),
        ("pedsql", 13, "infant_13_24"),
        ("pedsql", 24, "infant_13_24"),
        ("pedsql", 25, "toddler"),
        ("bitsea", 12, "parent"),
        ("bitsea", 36, None),
        ("example", 500, "standard"),
    ],
)
def test_form_for_age(instrument: str, age: int, form: str | None) -> None:
    assert instruments.form_for_age(instruments.load(instrument), age) == form


def test_form_ages_that_overlap_are_refused() -> None:
    text = """
code = "x"
version = "1"
name = "X"
forms = ["a", "b"]
[response_scales]
s = [0, 1]
[response_labels]
s = ["No", "Yes"]
[form_ages]
a = [0, 10]
b = [10, 20]
[[items]]
range = [1, 2]
scale = "s"
[[scales]]
code = "t"
rule = "prorated_mean"
items = [1, 2]
min_answered = 1
"""
    with pytest.raises(instruments.InstrumentError, match="overlaps"):
        instruments.engine.parse(text, "x.toml")
    with pytest.raises(instruments.InstrumentError, match="one per value"):
        instruments.engine.parse(
            text.replace('["No", "Yes"]', '["No"]').replace("b = [10, 20]", "b = [11, 20]"),
            "x.toml",
        )


def test_legal_choices_follow_the_jurisdiction() -> None:
    scotland = legal_choices("scotland")
    england = legal_choices("england_wales")
    sc_codes, en_codes = set(scotland.event_type_codes()), set(england.event_type_codes())
    assert "sc.cso" in sc_codes and "sc.cso" not in en_codes
    assert "en.C2" in en_codes and "en.C2" not in sc_codes
    common = {d.code for d in DECISION_TYPES if d.jurisdiction == "any"}
    assert common <= sc_codes and common <= en_codes
    assert sc_codes | en_codes == {d.code for d in DECISION_TYPES}
    assert [v for v, _ in scotland.proceedings_kinds] == [
        "childrens_hearing",
        "permanence_application",
        "adoption_application",
        "other",
    ]
    assert "care_proceedings" in dict(england.proceedings_kinds)
    labels = {v: label for g in england.event_types for v, label in g.choices}
    assert labels["en.C1"] == "Interim Care Order (C1)"
    assert scotland.jurisdiction_label == "Scotland"
    assert dict(PLACEMENT_TYPES)["parents"] == "With a birth parent"


# --------------------------------------------------------------------------- the service


def test_entry_plan_chooses_the_form_from_the_age(db: Database, actors: Actors) -> None:
    fam = family_with_children(db, actors["coord_gla"], "GLA", (30, 13))
    older, younger = (c.trial_id for c in fam.children)
    plan = assessment_entry.entry_plan(
        db, actors["research_gla"], older, "sdq", "baseline", date(2024, 4, 2)
    )
    assert (plan.form, plan.age_months, plan.no_form) == ("2-4", 31, None)
    assert plan.default_respondent == "carer" and "carer" in plan.respondents
    assert (
        assessment_entry.entry_plan(
            db, actors["research_gla"], older, "sdq", "baseline", date(2025, 9, 1)
        ).form
        == "4-17"
    )
    young = assessment_entry.entry_plan(
        db, actors["coord_gla"], younger, "sdq", "baseline", date(2024, 4, 2)
    )
    assert young.form is None and "14 months" in (young.no_form or "")
    assert "sdq" not in young.expected and "bitsea" in young.expected
    pedsql = assessment_entry.entry_plan(
        db, actors["coord_gla"], younger, "pedsql", "baseline", date(2024, 4, 2)
    )
    assert pedsql.form == "infant_13_24"


def test_entry_on_the_wrong_form_for_the_age_is_refused(db: Database, actors: Actors) -> None:
    fam = family_with_children(db, actors["coord_gla"], "GLA", (30,))
    child = fam.children[0].trial_id
    answers = dict.fromkeys(range(1, 26), 1)
    with pytest.raises(ValidationError) as info:
        assessment_entry.enter_assessment(
            db,
            actors["research_gla"],
            child,
            "baseline",
            "sdq",
            date(2024, 4, 2),
            answers,
            "carer",
            "4-17",
        )
    assert {(p.field, p.rule) for p in info.value.problems} == {("form", "ASM-012")}
    assert count_rows(db, Assessment) == 0
    view = assessment_entry.enter_assessment(
        db,
        actors["research_gla"],
        child,
        "baseline",
        "sdq",
        date(2024, 4, 2),
        answers,
        "carer",
        "2-4",
    )
    assert view.form == "2-4" and view.scores == instruments.score("sdq", answers, "2-4")


def test_an_empty_entry_is_refused(db: Database, actors: Actors) -> None:
    fam = family_with_children(db, actors["coord_gla"], "GLA", (30,))
    child = fam.children[0].trial_id
    with pytest.raises(ValidationError) as info:
        assessment_entry.enter_assessment(
            db,
            actors["research_gla"],
            child,
            "baseline",
            "sdq",
            date(2024, 4, 2),
            dict.fromkeys(range(1, 26)),
            "carer",
            "2-4",
        )
    assert rule_ids(info) == {"ASM-013"}
    refused = assessment_entry.enter_assessment(
        db,
        actors["research_gla"],
        child,
        "baseline",
        "sdq",
        date(2024, 4, 2),
        dict.fromkeys(range(1, 26)),
        "carer",
        "2-4",
        dict.fromkeys(range(1, 26), "refused"),
    )
    assert refused.scores["total_difficulties"] is None
