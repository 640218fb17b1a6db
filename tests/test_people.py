"""Birth parents, carers, their links to children over time, and their identifiable details."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from noim.db.base import utcnow
from noim.db.models import (
    BirthParent,
    BirthParentIdentity,
    Carer,
    CarerIdentity,
    Child,
    ChildBirthParent,
    ChildCarer,
)
from noim.db.session import Database
from noim.domain.exceptions import NotFound, PermissionDenied, ValidationError
from noim.services import audit, people, people_identity, voiding
from noim.services.families import FamilyView
from tests.conftest import Actors
from tests.factories import count_rows, family_with_children, rule_ids
from tests.test_cli import run

SCOPE = r"user 'coord_cro' \(coordinator at CRO\) may not .* at site 'GLA'"


@pytest.fixture
def gla(db: Database, actors: Actors) -> FamilyView:
    """A Glasgow family with two children who entered care on 2024-03-01."""
    return family_with_children(db, actors["coord_gla"], "GLA", (10, 30))


def test_parents_carers_and_links(db: Database, actors: Actors, gla: FamilyView) -> None:
    coord = actors["coord_gla"]
    child, sibling = gla.children[0].trial_id, gla.children[1].trial_id
    mother = people.add_parent(db, coord, gla.trial_id, "mother", 1995, True)
    father = people.add_parent(db, coord, gla.trial_id, "father")
    assert (mother.role, mother.previous_child_removed, father.year_of_birth) == (
        "mother",
        True,
        None,
    )
    assert [p.id for p in people.list_parents(db, coord, gla.trial_id)] == [mother.id, father.id]
    pr = people.link_parent(db, coord, mother.id, child, True, date(2023, 5, 1))
    assert (pr.parental_responsibility, pr.start_date, pr.end_date) == (
        True,
        date(2023, 5, 1),
        None,
    )
    foster = people.add_carer(db, coord, "GLA", "foster", "FC-12")
    kin = people.add_carer(db, coord, "GLA", "kinship")
    first = people.link_carer(db, coord, foster.id, child, "foster_carer", date(2024, 3, 1))
    ended = people.end_link(db, coord, "carer", first.id, date(2024, 9, 30))
    assert isinstance(ended, people.CarerLinkView) and ended.end_date == date(2024, 9, 30)
    people.link_carer(db, coord, kin.id, child, "kinship_carer", date(2024, 10, 1))
    people.link_carer(db, coord, foster.id, sibling, "foster_carer", date(2024, 3, 1))
    view = people.child_people(db, actors["research_gla"], child)
    assert [(c.carer_id, c.start_date, c.end_date) for c in view.carers] == [
        (foster.id, date(2024, 3, 1), date(2024, 9, 30)),
        (kin.id, date(2024, 10, 1), None),
    ]
    assert [(p.parent_id, p.role) for p in view.parents] == [(mother.id, "mother")]
    assert [c.id for c in people.list_carers(db, coord)] == [foster.id, kin.id]
    # the audit trail holds each insert and the end date
    history = audit.history(db, actors["admin"], "child_carers", str(first.id))
    assert [(r.action, r.field) for r in history] == [("insert", None), ("update", "end_date")]
    assert json.loads(history[0].new or "")["relationship"] == "foster_carer"
    assert audit.history(db, actors["admin"], "birth_parents", str(mother.id))[0].action == "insert"


def test_who_cared_for_the_child_on_a_date(db: Database, actors: Actors, gla: FamilyView) -> None:
    coord = actors["coord_gla"]
    child = gla.children[0].trial_id
    foster = people.add_carer(db, coord, "GLA", "foster")
    kin = people.add_carer(db, coord, "GLA", "kinship")
    link = people.link_carer(db, coord, foster.id, child, "foster_carer", date(2024, 3, 1))
    people.end_link(db, coord, "carer", link.id, date(2024, 6, 30))
    people.link_carer(db, coord, kin.id, child, "kinship_carer", date(2024, 7, 1))
    with db.read() as s:
        child_id = s.scalar(select(Child.id).where(Child.trial_id == child))
        checks = [
            (child_id, foster.id, date(2024, 3, 1)),
            (child_id, foster.id, date(2024, 6, 30)),
            (child_id, foster.id, date(2024, 7, 1)),
            (child_id, kin.id, date(2024, 6, 30)),
            (child_id, kin.id, date(2030, 1, 1)),
        ]
        assert people.cared_for_on(s, checks) == {checks[0], checks[1], checks[4]}
        assert people.cared_for_on(s, []) == set()


def test_bad_parent_reports_every_problem_and_writes_nothing(
    db: Database, actors: Actors, gla: FamilyView
) -> None:
    coord = actors["coord_gla"]
    before = count_rows(db, BirthParent)
    with pytest.raises(ValidationError) as err:
        people.add_parent(db, coord, gla.trial_id, "uncle", 1890, True)
    assert rule_ids(err) == {"PPL-001", "PPL-002", "PPL-003"}
    by_rule = {p.rule: p for p in err.value.problems}
    assert (by_rule["PPL-001"].field, by_rule["PPL-001"].value) == ("role", "uncle")
    assert by_rule["PPL-002"].value == 1890 and f"new birth parent of family {gla.trial_id}" == (
        by_rule["PPL-002"].record
    )
    assert count_rows(db, BirthParent) == before


def test_bad_links_report_every_problem_and_write_nothing(
    db: Database, actors: Actors, gla: FamilyView
) -> None:
    admin, coord = actors["admin"], actors["coord_gla"]
    child = gla.children[0]
    other = family_with_children(db, coord, "GLA", (5,))
    mother = people.add_parent(db, coord, other.trial_id, "mother")
    future = utcnow().date() + timedelta(days=5)
    before = count_rows(db, ChildBirthParent), count_rows(db, ChildCarer)
    with pytest.raises(ValidationError) as err:
        people.link_parent(
            db, coord, mother.id, child.trial_id, True, child.date_of_birth - timedelta(1), future
        )
    assert rule_ids(err) == {"PPL-005", "PPL-006", "PPL-007"}
    cro_carer = people.add_carer(db, actors["coord_cro"], "CRO", "foster")
    with pytest.raises(ValidationError) as err:
        people.link_carer(db, admin, cro_carer.id, child.trial_id, "aunt", future, date(2024, 1, 1))
    assert rule_ids(err) == {"PPL-011", "PPL-012", "PPL-007", "PPL-013"}
    assert "carer is at CRO" in str(err.value)
    carer = people.add_carer(db, coord, "GLA", "foster")
    link = people.link_carer(db, coord, carer.id, child.trial_id, "foster_carer", date(2024, 3, 1))
    with pytest.raises(ValidationError) as err:  # an open link overlaps any later start
        people.link_carer(db, coord, carer.id, child.trial_id, "foster_carer", date(2024, 8, 1))
    assert rule_ids(err) == {"PPL-008"} and f"overlapping link {link.id}" in str(err.value)
    with pytest.raises(ValidationError) as err:
        people.end_link(db, coord, "carer", link.id, date(2024, 2, 1))
    assert rule_ids(err) == {"PPL-013"}
    people.end_link(db, coord, "carer", link.id, date(2024, 5, 1))
    with pytest.raises(ValidationError) as err:
        people.end_link(db, coord, "carer", link.id, date(2024, 6, 1))
    assert rule_ids(err) == {"PPL-014"}
    with pytest.raises(ValidationError) as err:  # 2024-04-01 to 2024-04-30 lies in the ended link
        people.link_carer(
            db, coord, carer.id, child.trial_id, "foster_carer", date(2024, 4, 1), date(2024, 4, 30)
        )
    assert rule_ids(err) == {"PPL-008"}
    # after the end date the same carer may care for the child again
    people.link_carer(db, coord, carer.id, child.trial_id, "foster_carer", date(2024, 5, 2))
    assert (
        count_rows(db, ChildBirthParent) == before[0]
        and count_rows(db, ChildCarer) == before[1] + 2
    )
    with pytest.raises(ValidationError) as err:
        people.add_carer(db, coord, "GLA", "nanny", "R" * 40)
    assert rule_ids(err) == {"PPL-009", "PPL-010"}
    with pytest.raises(NotFound, match="no carer link 999"):
        people.end_link(db, coord, "carer", 999, date(2024, 5, 1))


def test_voided_people_and_void_rules(db: Database, actors: Actors, gla: FamilyView) -> None:
    coord = actors["coord_gla"]
    child = gla.children[0].trial_id
    carer = people.add_carer(db, coord, "GLA", "foster")
    link = people.link_carer(db, coord, carer.id, child, "foster_carer", date(2024, 3, 1))
    with pytest.raises(ValidationError) as err:
        voiding.void_record(db, coord, "carers", carer.id, "entered twice")
    assert rule_ids(err) == {"PPL-017"} and err.value.problems[0].field == "child_carers"
    assert f"1 live row(s): {link.id}" in str(err.value)
    voiding.void_record(db, coord, "child_carers", link.id, "entered twice")
    assert people.child_people(db, coord, child).carers == ()
    assert people.child_people(db, coord, child, include_voided=True).carers[0].voided
    done = voiding.void_record(db, coord, "carers", carer.id, "entered twice")
    assert not done.already_voided
    again = voiding.void_record(db, coord, "carers", carer.id, "again")
    assert again.already_voided and again.reason == "entered twice"
    history = audit.history(db, actors["admin"], "carers", str(carer.id))
    assert {(r.action, r.field, r.reason) for r in history if r.action == "void"} == {
        ("void", "voided_at", "entered twice"),
        ("void", "void_reason", "entered twice"),
    }
    with pytest.raises(ValidationError) as err:
        people.link_carer(db, coord, carer.id, child, "foster_carer", date(2025, 1, 1))
    assert rule_ids(err) == {"PPL-015"}
    with pytest.raises(NotFound, match="no voidable record kind 'children'"):
        voiding.void_record(db, coord, "children", 1, "x")
    with pytest.raises(NotFound, match="no carer 999"):
        voiding.void_record(db, coord, "carers", 999, "x")


def test_identities_only_for_roles_allowed_identifiable_data(
    db: Database, actors: Actors, gla: FamilyView
) -> None:
    coord = actors["coord_gla"]
    mother = people.add_parent(db, coord, gla.trial_id, "mother")
    carer = people.add_carer(db, coord, "GLA", "kinship")
    people_identity.set_parent_identity(db, coord, mother.id, given_name="Ann", phone="0141")
    people_identity.set_carer_identity(db, coord, carer.id, family_name="Brown", postcode="G1 1AA")
    assert people_identity.get_parent_identity(db, coord, mother.id)["given_name"] == "Ann"
    assert people_identity.get_carer_identity(db, actors["admin"], carer.id)["postcode"] == "G1 1AA"
    people_identity.set_carer_identity(db, coord, carer.id, phone="0141 000")
    assert count_rows(db, CarerIdentity) == 1
    for name in ("research_gla", "datamanager", "statistician"):
        with pytest.raises(PermissionDenied, match="lacks 'read_identifiable'"):
            people_identity.get_parent_identity(db, actors[name], mother.id)
        with pytest.raises(PermissionDenied, match="lacks 'write_identifiable'"):
            people_identity.set_carer_identity(db, actors[name], carer.id, given_name="X")
    before = count_rows(db, BirthParentIdentity)
    with pytest.raises(ValidationError) as err:
        people_identity.set_parent_identity(db, coord, mother.id, nickname="A")
    assert rule_ids(err) == {"PPL-016"}
    with pytest.raises(ValidationError) as err:
        people_identity.set_parent_identity(db, coord, mother.id, postcode="X" * 11)
    assert rule_ids(err) == {"PPL-016"}
    assert count_rows(db, BirthParentIdentity) == before
    # the audit trail hides identifiable values from roles not allowed to read them
    rows = audit.history(db, actors["datamanager"], "carer_identities", "1")
    assert rows and all(r.new == "[identifiable]" for r in rows)


def test_people_services_are_site_scoped(db: Database, actors: Actors, gla: FamilyView) -> None:
    gla_coord, cro = actors["coord_gla"], actors["coord_cro"]
    child = gla.children[0].trial_id
    mother = people.add_parent(db, gla_coord, gla.trial_id, "mother")
    carer = people.add_carer(db, gla_coord, "GLA", "foster")
    link = people.link_carer(db, gla_coord, carer.id, child, "foster_carer", date(2024, 3, 1))
    plink = people.link_parent(db, gla_coord, mother.id, child)
    before = [count_rows(db, m) for m in (BirthParent, Carer, ChildCarer, ChildBirthParent)]
    writes = [
        lambda: people.add_parent(db, cro, gla.trial_id, "father"),
        lambda: people.link_parent(db, cro, mother.id, child),
        lambda: people.add_carer(db, cro, "GLA", "foster"),
        lambda: people.link_carer(db, cro, carer.id, child, "foster_carer", date(2024, 3, 1)),
        lambda: people.end_link(db, cro, "carer", link.id, date(2024, 5, 1)),
        lambda: people.end_link(db, cro, "parent", plink.id, date(2024, 5, 1)),
        lambda: people_identity.set_parent_identity(db, cro, mother.id, given_name="X"),
        lambda: people_identity.set_carer_identity(db, cro, carer.id, given_name="X"),
        lambda: voiding.void_record(db, cro, "child_carers", link.id, "x"),
        lambda: voiding.void_record(db, cro, "birth_parents", mother.id, "x"),
    ]
    reads = [
        lambda: people.list_parents(db, cro, gla.trial_id),
        lambda: people.list_carers(db, cro, "GLA"),
        lambda: people.child_people(db, cro, child),
        lambda: people_identity.get_parent_identity(db, cro, mother.id),
        lambda: people_identity.get_carer_identity(db, cro, carer.id),
    ]
    for call in writes + reads:
        with pytest.raises(PermissionDenied, match=SCOPE):
            call()
    assert [count_rows(db, m) for m in (BirthParent, Carer, ChildCarer, ChildBirthParent)] == before
    assert people.list_carers(db, cro) == []
    with pytest.raises(PermissionDenied, match="lacks 'write_trial_data'"):
        people.add_carer(db, actors["research_gla"], "GLA", "foster")


def test_people_commands(db_url: str) -> None:
    from tests.test_cli_randomisation import _family_with_child

    base = ("--database", db_url, "--user", "coord_gla")
    fam, child = _family_with_child(db_url)
    parent = run(*base, "parent", "add", fam, "--role", "mother", "--born-year", "1990",
                 "--previous-child-removed", "--json")  # fmt: skip
    assert parent.exit_code == 0, parent.stderr
    parent_id = str(json.loads(parent.output)["id"])
    linked = run(
        *base, "parent", "link", parent_id, child, "--responsibility", "--from", "2023-06-01"
    )
    assert linked.exit_code == 0 and "birth parent" in linked.output
    parent_link_id = linked.output.split(":")[0].removeprefix("Link ")
    unlinked = run(*base, "parent", "unlink", parent_link_id, "--on", "2024-06-01", "--json")
    assert unlinked.exit_code == 0, unlinked.stderr
    assert json.loads(unlinked.output)["end_date"] == "2024-06-01"
    assert json.loads(unlinked.output)["start_date"] == "2023-06-01"
    assert "mother" in run(*base, "parent", "list", fam).output
    carer = json.loads(
        run(*base, "carer", "add", "--site", "GLA", "--type", "foster", "--json").output
    )
    link = run(*base, "carer", "link", str(carer["id"]), child, "--relationship", "foster_carer",
               "--from", "2024-02-01", "--json")  # fmt: skip
    assert link.exit_code == 0, link.stderr
    link_id = str(json.loads(link.output)["id"])
    ended = run(*base, "carer", "unlink", link_id, "--on", "2024-01-01")
    assert ended.exit_code == 1 and "PPL-013" in ended.stderr and ended.stderr.startswith("error: ")
    assert run(*base, "carer", "unlink", link_id, "--on", "2024-08-01").exit_code == 0
    shown = json.loads(run(*base, "child", "carers", child, "--json").output)
    assert shown["carers"][0]["end_date"] == "2024-08-01"
    assert shown["parents"][0]["parental_responsibility"] is True
    assert shown["parents"][0]["end_date"] == "2024-06-01"
    assert "Carers of" in run(*base, "child", "carers", child).output
    assert "foster" in run(*base, "carer", "list").output
    named = run(*base, "carer", "identity", str(carer["id"]), "--given-name", "Jo", "--json")
    assert json.loads(named.output)["given_name"] == "Jo"
    assert "given_name: Jo" in run(*base, "carer", "identity", str(carer["id"])).output
    research = run("--database", db_url, "--user", "research_gla", "parent", "identity", parent_id)
    assert research.exit_code == 1 and "read_identifiable" in research.stderr
    voided = run(*base, "void", "child_carers", link_id, "--reason", "wrong carer")
    assert voided.exit_code == 0 and "Voided child_carers" in voided.output
    unknown = run(*base, "void", "families", "1", "--reason", "x")
    assert unknown.exit_code == 2
    cro = run("--database", db_url, "--user", "coord_cro", "child", "carers", child)
    assert cro.exit_code == 1 and "may not" in cro.stderr
