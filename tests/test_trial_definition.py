"""The trial definition: built-in NIM default, a different example trial, and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from noim.domain.exceptions import TrialDefinitionError
from noim.domain.trialdef import (
    builtin_definition,
    default_definition,
    load_definition,
    parse_definition,
)


def test_nim_default_has_the_published_design() -> None:
    d = default_definition()
    assert d.trial.short_name == "BeST?"
    assert d.trial.registration == "NCT02653716"
    assert [(s.code, s.jurisdiction) for s in d.sites] == [
        ("GLA", "scotland"),
        ("CRO", "england_wales"),
    ]
    assert [la.name for la in d.site("GLA").local_authorities] == ["Glasgow City", "Renfrewshire"]
    assert d.site("CRO").requires_care_proceedings
    assert [a.code for a in d.arms] == ["NIM", "SAU"]
    assert d.arm("NIM").label_at("GLA") == "GIFT"
    assert d.arm("NIM").label_at("CRO") == "LIFT"
    assert all(a.ratio == 1 for a in d.arms)
    r = d.randomisation
    assert (r.unit, r.method, r.minimisation_probability) == ("family", "minimisation", 0.8)
    assert r.factors == ("site", "youngest_age_band", "family_size")
    age = d.factor("youngest_age_band")
    assert [age.level_for(m) for m in (0, 11, 12, 35, 36, 60)] == [
        "0-11m",
        "0-11m",
        "12-35m",
        "12-35m",
        "36-60m",
        "36-60m",
    ]
    assert d.factor("family_size").level_for(3) == "2+"
    tps = {t.code: t for t in d.timepoints}
    assert (
        tps["baseline"].anchor,
        str(tps["baseline"].window_start),
        str(tps["baseline"].window_end),
    ) == ("entry_to_care", "4w", "14w")
    assert (tps["15m"].anchor, str(tps["15m"].offset)) == ("entry_to_care", "15m")
    assert (tps["30m"].anchor, str(tps["30m"].offset)) == ("randomisation", "30m")
    assert {(i.instrument, i.respondent) for i in tps["30m"].instruments} >= {("sdq", "carer")}


def test_example_trial_is_different() -> None:
    d = builtin_definition("example")
    assert d.trial.code != default_definition().trial.code
    assert len(d.sites) == 3
    assert d.randomisation.method == "blocks"
    assert [a.ratio for a in d.arms] == [2, 1]
    assert d.factor("has_sibling_in_care").source == "declared"
    assert all(t.anchor == "randomisation" for t in d.timepoints)


def test_load_from_file(tmp_path: Path) -> None:
    path = tmp_path / "trial.toml"
    path.write_text(
        default_definition().text, encoding="utf-8-sig"
    )  # with a BOM, as Excel-era editors save
    assert load_definition(path).trial.code == "BEST"


NIM = default_definition().text


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'jurisdiction = "scotland"',
            'jurisdiction = "scotlnd"',
            "key sites[0].jurisdiction: got 'scotlnd'; expected one of 'scotland', 'england_wales'",
        ),
        (
            'offset = "15m"',
            'offset = "15 months"',
            "key timepoints[1].offset: got '15 months'; expected a duration",
        ),
        (
            'anchor = "randomisation"',
            'anchor = "consent"',
            "key timepoints[2].anchor: got 'consent'; expected one of",
        ),
        (
            'window = ["4w", "14w"]',
            'window = ["6w", "14w"]',
            "key timepoints[0].window: got ['6w', '14w']; expected a window that contains the offset 4w",
        ),
        (
            'code = "SAU"',
            'code = "NIM"',
            "key arms[1].code: got 'NIM'; expected a arm code not used before",
        ),
        (
            "minimisation_probability = 0.8",
            "minimisation_probability = 0.4",
            "key randomisation.minimisation_probability: got 0.4",
        ),
        (
            'factors = ["site", "youngest_age_band", "family_size"]',
            'factors = ["site", "age"]',
            "key randomisation.factors: got 'age'; expected a factor code",
        ),
        (
            'labels = { GLA = "GIFT", CRO = "LIFT" }',
            'labels = { GLA = "GIFT", LON = "LIFT" }',
            "key arms[0].labels.LON: got 'LON'; expected a site code",
        ),
        (
            'id_prefix = "L"',
            'id_prefix = "G"',
            "key sites[1].id_prefix: got 'G'; expected an ID prefix not used by another site",
        ),
        (
            "block_sizes = [2, 4]",
            "block_sizes = [3]",
            "key randomisation.block_sizes: got 3; expected multiples of the sum of arm ratios (2)",
        ),
        (
            'registration = "NCT02653716"',
            "registration = 2653716",
            "key trial.registration: got 2653716",
        ),
        ("[trial]", "[trial]\ncolour = 'blue'", "key trial.colour: not a known key"),
        (
            'unit = "family"',
            'unit = "child"',
            "key randomisation.unit: got 'child'; expected one of 'family'",
        ),
    ],
)
def test_invalid_definition_names_key_value_and_expectation(
    old: str, new: str, message: str
) -> None:
    assert old in NIM
    with pytest.raises(TrialDefinitionError) as info:
        parse_definition(NIM.replace(old, new, 1), "bad.toml")
    assert message in str(info.value)
    assert str(info.value).startswith("invalid trial definition bad.toml:")


def test_the_control_arm_is_named_and_comes_first() -> None:
    assert default_definition().control_arm == default_definition().arm("SAU")
    assert default_definition().arm_order() == ["SAU", "NIM"]
    example = builtin_definition("example")
    assert example.control_arm is not None and example.control_arm.code == "CTL"
    assert example.arm_order() == ["CTL", "INT"]


CONTROL = "control = true  # the comparator: effects are reported as intervention minus control"


def test_exactly_one_control_arm_is_required() -> None:
    assert CONTROL in NIM
    with pytest.raises(TrialDefinitionError, match="key arms: no arm has control = true; "):
        parse_definition(NIM.replace(CONTROL, ""), "new.toml")
    two = NIM.replace("ratio = 1\n", "ratio = 1\ncontrol = true\n", 1)
    with pytest.raises(TrialDefinitionError, match="key arms: control = true on NIM, SAU; "):
        parse_definition(two, "new.toml")
    with pytest.raises(TrialDefinitionError, match=r"key arms\[1\].control: got 'yes'"):
        parse_definition(NIM.replace("control = true", "control = 'yes'"), "new.toml")


def test_a_stored_definition_that_predates_the_control_key_is_read() -> None:
    # a definition stored (database, data freeze) before the key existed: the arm served only
    # by comparator teams is the control; with no teams, no control arm is named
    legacy = parse_definition(NIM.replace(CONTROL, ""), "database", stored=True)
    assert legacy.control_arm is not None and legacy.control_arm.code == "SAU"
    example = builtin_definition("example").text.replace(CONTROL, "")
    unnamed = parse_definition(example, "database", stored=True)
    assert unnamed.control_arm is None
    assert unnamed.arm_order() == ["INT", "CTL"]


def test_every_problem_is_reported_at_once() -> None:
    text = NIM.replace('jurisdiction = "scotland"', 'jurisdiction = "x"').replace(
        'offset = "30m"', 'offset = "x"'
    )
    with pytest.raises(TrialDefinitionError) as info:
        parse_definition(text)
    assert len(info.value.problems) == 2


def test_missing_sections_and_bad_toml() -> None:
    with pytest.raises(TrialDefinitionError, match="key trial: missing; expected a table"):
        parse_definition("[[arms]]\ncode='A'\nname='a'\n")
    with pytest.raises(TrialDefinitionError, match="not valid TOML"):
        parse_definition("[trial\n")


def test_unknown_file_and_builtin() -> None:
    with pytest.raises(TrialDefinitionError, match="cannot read the file"):
        load_definition("/nonexistent/trial.toml")
    with pytest.raises(TrialDefinitionError, match="no built-in trial 'nimm'"):
        builtin_definition("nimm")
