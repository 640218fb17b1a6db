"""Registering a family with its children (and its screening entry) in one unit of work."""

from __future__ import annotations

from datetime import date

import pytest

from noim.db.models import AuditLog, Child, Family, ScreeningEntry
from noim.db.session import Database
from noim.domain.exceptions import NotFound, PermissionDenied, ValidationError
from noim.services import families, screening
from noim.services.enrolment import (
    NewChild,
    child_record,
    enrolment_status,
    register_with_children,
)
from tests.conftest import Actors
from tests.factories import count_rows, rule_ids

TODAY = date(2026, 1, 1)
KID = NewChild(date(2024, 1, 10), "female", date(2024, 6, 1))


def _rows(db: Database) -> tuple[int, int, int]:
    return count_rows(db, Family), count_rows(db, Child), count_rows(db, AuditLog)


def test_registers_family_children_and_links_screening(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    entry = screening.add_entry(db, coord, "GLA", date(2024, 6, 3), 2, True)
    twin = NewChild(date(2024, 1, 10), "male", date(2024, 6, 1), "sc.cpo")
    fam = register_with_children(
        db, coord, "GLA", [KID, twin], local_authority="GCC", screening_entry=entry.id, today=TODAY
    )
    assert fam.site == "GLA" and fam.local_authority == "GCC" and not fam.randomised
    assert [c.trial_id for c in fam.children] == [
        families.get_family(db, coord, fam.trial_id).children[i].trial_id for i in (0, 1)
    ]
    assert [(c.child_number, c.sex, c.eligibility) for c in fam.children] == [
        (1, "female", "pending"),
        (2, "male", "pending"),
    ]
    assert fam.children[1].legal_route == "sc.cpo"
    (linked,) = [e for e in screening.list_entries(db, coord).entries if e.id == entry.id]
    assert linked.family == fam.trial_id
    # the next family takes the next sequence number, as `noim family register` does
    again = families.register_family(db, coord, "GLA", "GCC")
    assert again.trial_id.split("-")[1] == f"{int(fam.trial_id.split('-')[1]) + 1:04d}"


def test_every_problem_is_reported_and_nothing_written(db: Database, actors: Actors) -> None:
    coord = actors["coord_cro"]
    entry = screening.add_entry(db, coord, "CRO", date(2024, 6, 3), 1, False, "too old")
    before = _rows(db)
    bad = NewChild(date(2024, 6, 1), "boy", date(2024, 1, 1), "sc.cpo")
    with pytest.raises(ValidationError) as exc:
        register_with_children(
            db,
            coord,
            "CRO",
            [KID, bad],
            local_authority="GCC",
            in_care_proceedings=False,
            screening_entry=entry.id,
            today=TODAY,
        )
    problems = {(p.record, p.field, p.rule) for p in exc.value.problems}
    assert ("family", "local_authority", "FAM-001") in problems
    assert ("family", "in_care_proceedings", "FAM-002") in problems
    assert (child_record(2), "sex", "CHD-004") in problems
    assert (child_record(2), "entered_care_on", "CHD-001") in problems
    assert (child_record(2), "legal_route", "CHD-005") in problems  # a Scottish route at CRO
    assert (f"screening entry {entry.id}", "eligible", "SCR-008") in problems
    assert not any(p.record == child_record(1) for p in exc.value.problems)
    assert _rows(db) == before
    assert count_rows(db, ScreeningEntry, ScreeningEntry.family_id.is_not(None)) == 0


def test_needs_one_to_twenty_children(db: Database, actors: Actors) -> None:
    before = _rows(db)
    for kids in ([], [KID] * 21):
        with pytest.raises(ValidationError) as exc:
            register_with_children(db, actors["coord_gla"], "GLA", kids, today=TODAY)
        assert rule_ids(exc) == {"ENR-001"}
    assert _rows(db) == before


def test_site_scope(db: Database, actors: Actors) -> None:
    gla_entry = screening.add_entry(db, actors["coord_gla"], "GLA", date(2024, 6, 3), 1, True)
    before = _rows(db)
    with pytest.raises(PermissionDenied):
        register_with_children(db, actors["coord_cro"], "GLA", [KID], today=TODAY)
    with pytest.raises(PermissionDenied):
        register_with_children(
            db,
            actors["coord_cro"],
            "CRO",
            [KID],
            in_care_proceedings=True,
            screening_entry=gla_entry.id,
            today=TODAY,
        )
    for role in ("research_gla", "datamanager", "statistician"):
        with pytest.raises(PermissionDenied):
            register_with_children(db, actors[role], "GLA", [KID], today=TODAY)
    with pytest.raises(NotFound):
        register_with_children(db, actors["coord_gla"], "GLA", [KID], screening_entry=999)
    assert _rows(db) == before


def test_entry_of_another_site_is_refused(db: Database, actors: Actors) -> None:
    entry = screening.add_entry(db, actors["admin"], "CRO", date(2024, 6, 3), 1, True)
    before = _rows(db)
    with pytest.raises(ValidationError) as exc:
        register_with_children(db, actors["admin"], "GLA", [KID], screening_entry=entry.id)
    assert rule_ids(exc) == {"SCR-009"}
    assert _rows(db) == before


def test_status_follows_the_family_to_randomisation(db: Database, actors: Actors) -> None:
    from noim.services import consent, people, randomisation

    coord = actors["coord_gla"]
    randomisation.setup(db, actors["admin"], 777)
    fam = register_with_children(db, coord, "GLA", [KID, KID], local_authority="GCC", today=TODAY)
    first, second = (c.trial_id for c in fam.children)
    st = enrolment_status(db, coord, fam.trial_id)
    assert [c.eligibility for c in st.children] == ["pending", "pending"]
    assert {(p.record, p.rule) for p in st.missing} == {
        (f"child {k}", r) for k in (first, second) for r in ("RND-004", "RND-005")
    }
    assert st.declared == () and st.allocation is None and not st.randomised
    parent = people.add_parent(db, coord, fam.trial_id, "mother")
    consent.decide_eligibility(db, coord, first, True, date(2024, 6, 2))
    consent.decide_eligibility(db, coord, second, False, date(2024, 6, 2), "aged over GIFT limit")
    consent.record_consent(db, coord, first, "birth_parent", "v3", date(2024, 6, 2), parent.id)
    st = enrolment_status(db, coord, fam.trial_id)
    assert [(c.kind, c.id) for c in st.consenters] == [("birth_parent", parent.id)]
    assert [len(c.consents) for c in st.children] == [1, 0]
    assert {(p.record, p.rule) for p in st.missing} == {
        (f"child {second}", "RND-004"),
        (f"child {second}", "RND-005"),
    }
    # a blinded reader gets the free text masked; a role outside the site nothing
    blinded = enrolment_status(db, actors["research_gla"], fam.trial_id)
    assert "GIFT" not in (blinded.children[1].ineligibility_reason or "")
    with pytest.raises(PermissionDenied):
        enrolment_status(db, actors["coord_cro"], fam.trial_id)
    consent.decide_eligibility(db, coord, second, True, date(2024, 6, 2))
    consent.record_consent(db, coord, second, "local_authority", "v3", date(2024, 6, 2))
    assert enrolment_status(db, coord, fam.trial_id).missing == ()
    allocated = randomisation.randomise(db, coord, fam.trial_id)
    st = enrolment_status(db, coord, fam.trial_id)
    assert st.randomised and st.missing == () and st.allocation == allocated
    for role in ("research_gla", "datamanager", "statistician"):
        hidden = enrolment_status(db, actors[role], fam.trial_id)
        assert hidden.randomised and hidden.allocation is None
