"""Registering families and children: trial IDs, validation with rule ids, correction, void."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from noim.db.models import ChildIdentity
from noim.db.session import Database
from noim.domain import trial_ids
from noim.domain.exceptions import NotFound, ReasonRequired, ValidationError
from noim.services import families
from tests.conftest import Actors
from tests.factories import TODAY, family_with_children


def test_trial_ids_follow_the_site_sequence(db: Database, actors: Actors) -> None:
    a = families.register_family(db, actors["coord_gla"], "GLA", "GCC")
    b = families.register_family(db, actors["coord_gla"], "GLA", "REN")
    c = families.register_family(db, actors["coord_cro"], "CRO", "CROY", True)
    assert [trial_ids.parse(x.trial_id).family_seq for x in (a, b, c)] == [1, 2, 1]
    assert a.trial_id.startswith("G-0001-") and c.trial_id.startswith("L-0001-")
    assert b.local_authority == "REN"


def test_children_get_numbered_ids(db: Database, actors: Actors) -> None:
    fam = family_with_children(db, actors["coord_gla"], "GLA", (2, 26, 50))
    assert [c.child_number for c in fam.children] == [1, 2, 3]
    for c in fam.children:
        parsed = trial_ids.parse(c.trial_id)
        assert parsed.family_id == fam.trial_id
    assert all(
        c.eligibility == "pending" and not c.joined_after_randomisation for c in fam.children
    )


@pytest.mark.parametrize(
    ("dob", "sex", "entered", "route", "rule", "fragment"),
    [
        (
            date(2024, 5, 1),
            "female",
            date(2024, 4, 1),
            None,
            "CHD-001",
            "a date on or after the date of birth",
        ),
        (
            date(2018, 1, 1),
            "female",
            date(2024, 4, 1),
            None,
            "CHD-002",
            "age 0-60 months (the child was 75 months old)",
        ),
        (date(2027, 1, 1), "female", date(2027, 2, 1), None, "CHD-003", "a date not after today"),
        (
            date(2023, 1, 1),
            "girl",
            date(2024, 4, 1),
            None,
            "CHD-004",
            "one of female, male, unknown",
        ),
        (
            date(2023, 1, 1),
            "female",
            date(2024, 4, 1),
            "en.C1",
            "CHD-005",
            "a legal route into care in scotland",
        ),
        (
            date(2023, 1, 1),
            "female",
            date(2024, 4, 1),
            "sc.po",
            "CHD-005",
            "a legal route into care in scotland",
        ),
    ],
)
def test_child_validation_names_rule_field_value(
    db: Database,
    actors: Actors,
    dob: date,
    sex: str,
    entered: date,
    route: str | None,
    rule: str,
    fragment: str,
) -> None:
    fam = families.register_family(db, actors["coord_gla"], "GLA")
    with pytest.raises(ValidationError) as info:
        families.add_child(
            db, actors["coord_gla"], fam.trial_id, dob, sex, entered, route, today=TODAY
        )
    problem = info.value.problems[0]
    assert problem.rule == rule
    assert fragment in str(problem)
    assert problem.record == f"new child of family {fam.trial_id}"


def test_every_problem_is_reported(db: Database, actors: Actors) -> None:
    fam = families.register_family(db, actors["coord_gla"], "GLA")
    with pytest.raises(ValidationError) as info:
        families.add_child(
            db,
            actors["coord_gla"],
            fam.trial_id,
            date(2027, 1, 1),
            "girl",
            date(2026, 12, 1),
            "xx",
            today=TODAY,
        )
    assert {p.rule for p in info.value.problems} == {"CHD-001", "CHD-003", "CHD-004", "CHD-005"}
    assert families.get_family(db, actors["coord_gla"], fam.trial_id).children == ()


def test_family_rules(db: Database, actors: Actors) -> None:
    with pytest.raises(ValidationError, match="FAM-001"):
        families.register_family(db, actors["coord_gla"], "GLA", "CROY")
    with pytest.raises(ValidationError, match="FAM-002"):
        families.register_family(db, actors["coord_cro"], "CRO", "CROY", in_care_proceedings=False)
    with pytest.raises(NotFound, match="no site 'EDI'; expected one of CRO, GLA"):
        families.register_family(db, actors["admin"], "EDI")
    with pytest.raises(ValidationError, match="ID-001"):
        families.get_family(db, actors["admin"], "G-0001")
    with pytest.raises(NotFound):
        families.get_family(db, actors["admin"], trial_ids.family_id("G", 77))


def test_correction_needs_a_reason_and_is_validated(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    fam = family_with_children(db, coord, "GLA", (10,))
    child = fam.children[0].trial_id
    with pytest.raises(ReasonRequired):
        families.correct_child(db, coord, child, {"sex": "male"}, reason="")
    with pytest.raises(ValidationError, match="CHD-001"):
        families.correct_child(db, coord, child, {"entered_care_on": date(2000, 1, 1)}, reason="x")
    with pytest.raises(ValidationError, match="CHD-006"):
        families.correct_child(db, coord, child, {"family_id": 3}, reason="x")
    view = families.correct_child(
        db, coord, child, {"legal_route_code": "sc.cpo"}, reason="route confirmed"
    )
    assert view.legal_route == "sc.cpo"


def test_void_keeps_the_rows(db: Database, actors: Actors) -> None:
    coord = actors["coord_cro"]
    fam = family_with_children(db, coord, "CRO", (4,))
    with pytest.raises(ReasonRequired):
        families.void_family(db, coord, fam.trial_id, reason="")
    view = families.void_family(db, coord, fam.trial_id, reason="duplicate registration")
    assert view.voided and all(c.voided for c in view.children)
    assert [f.voided for f in families.list_families(db, coord)] == [True]
    with pytest.raises(ValidationError, match="FAM-003"):
        families.add_child(
            db, coord, fam.trial_id, date(2024, 1, 1), "male", date(2024, 2, 1), today=TODAY
        )


def test_identifiable_details_live_apart(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    fam = family_with_children(db, coord, "GLA", (10,))
    child = fam.children[0].trial_id
    families.set_child_identity(
        db, coord, child, given_name="Ava", family_name="Stone", social_work_ref="SW-1"
    )
    assert families.get_child_identity(db, coord, child)["given_name"] == "Ava"
    assert families.get_child_identity(db, actors["admin"], child)["social_work_ref"] == "SW-1"
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(ChildIdentity)) == 1
    view = families.get_family(db, coord, fam.trial_id)
    assert "Ava" not in repr(view)
