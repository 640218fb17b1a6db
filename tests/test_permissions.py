"""Site scoping and blinding: every service refuses cross-site reads and writes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from noim.db import audit as audit_db
from noim.db.base import utcnow
from noim.db.models import Allocation, Family
from noim.db.session import Database
from noim.domain.exceptions import PermissionDenied
from noim.domain.roles import Actor
from noim.services import audit, families, setup, users
from tests.conftest import Actors
from tests.factories import TODAY, family_with_children

Call = Callable[[Database, Actor, str, str], Any]

# (description, call(db, actor, family_id, child_id)) for every family/child service
READS: list[tuple[str, Call]] = [
    ("get_family", lambda db, a, f, c: families.get_family(db, a, f)),
    ("list_families(site)", lambda db, a, f, c: families.list_families(db, a, "GLA")),
    ("get_child_identity", lambda db, a, f, c: families.get_child_identity(db, a, c)),
]
WRITES: list[tuple[str, Call]] = [
    ("register_family", lambda db, a, f, c: families.register_family(db, a, "GLA")),
    (
        "add_child",
        lambda db, a, f, c: families.add_child(
            db, a, f, date(2024, 1, 1), "male", date(2024, 2, 1), today=TODAY
        ),
    ),
    (
        "correct_child",
        lambda db, a, f, c: families.correct_child(db, a, c, {"sex": "male"}, reason="x"),
    ),
    ("void_family", lambda db, a, f, c: families.void_family(db, a, f, reason="x")),
    (
        "set_child_identity",
        lambda db, a, f, c: families.set_child_identity(db, a, c, given_name="X"),
    ),
]


@pytest.fixture
def glasgow_family(db: Database, actors: Actors) -> tuple[str, str]:
    fam = family_with_children(db, actors["coord_gla"], "GLA", (9,))
    return fam.trial_id, fam.children[0].trial_id


@pytest.mark.parametrize(("name", "call"), READS + WRITES, ids=[n for n, _ in READS + WRITES])
def test_croydon_coordinator_cannot_touch_a_glasgow_family(
    db: Database, actors: Actors, glasgow_family: tuple[str, str], name: str, call: Call
) -> None:
    family_id, child_id = glasgow_family
    with pytest.raises(
        PermissionDenied, match=r"user 'coord_cro' \(coordinator at CRO\) may not .* at site 'GLA'"
    ):
        call(db, actors["coord_cro"], family_id, child_id)
    # and the same call works for Glasgow's own coordinator
    call(db, actors["coord_gla"], family_id, child_id)


@pytest.mark.parametrize(("name", "call"), READS, ids=[n for n, _ in READS])
def test_researcher_of_another_site_cannot_read(
    db: Database, actors: Actors, glasgow_family: tuple[str, str], name: str, call: Call
) -> None:
    family_id, child_id = glasgow_family
    with pytest.raises(PermissionDenied):
        call(db, actors["research_cro"], family_id, child_id)


def test_site_scoped_lists_hide_other_sites(
    db: Database, actors: Actors, glasgow_family: tuple[str, str]
) -> None:
    family_with_children(db, actors["coord_cro"], "CRO", (3,))
    assert {f.site for f in families.list_families(db, actors["coord_cro"])} == {"CRO"}
    assert {f.site for f in families.list_families(db, actors["research_gla"])} == {"GLA"}
    assert {f.site for f in families.list_families(db, actors["statistician"])} == {"GLA", "CRO"}


@pytest.mark.parametrize(
    "who", ["research_gla", "datamanager", "statistician", "unblinded_stat", "dmc_chair"]
)
def test_roles_without_write_rights_cannot_write(
    db: Database, actors: Actors, glasgow_family: tuple[str, str], who: str
) -> None:
    family_id, child_id = glasgow_family
    for _name, call in WRITES:
        with pytest.raises(PermissionDenied):
            call(db, actors[who], family_id, child_id)


@pytest.mark.parametrize(
    "who", ["research_gla", "datamanager", "statistician", "unblinded_stat", "dmc_chair"]
)
def test_only_site_coordinators_and_administrators_read_identities(
    db: Database, actors: Actors, glasgow_family: tuple[str, str], who: str
) -> None:
    with pytest.raises(PermissionDenied, match="identifiable"):
        families.get_child_identity(db, actors[who], glasgow_family[1])


def test_blinded_roles_see_a_masked_arm(
    db: Database, actors: Actors, glasgow_family: tuple[str, str]
) -> None:
    family_id, _ = glasgow_family
    with db.write(actors["admin"]) as s:
        fid = s.scalar(select(Family.id).where(Family.trial_id == family_id))
        audit_db.insert_rows(
            s,
            Allocation,
            [
                {
                    "family_id": fid,
                    "arm_code": "SAU",
                    "method": "minimisation",
                    "stratum": "GLA",
                    "factors": {},
                    "sequence_number": 1,
                    "masked_code": "QX4D",
                    "randomised_at": utcnow(),
                    "randomised_by_id": actors["coord_gla"].user_id,
                }
            ],
        )
    assert families.get_family(db, actors["coord_gla"], family_id).arm == "SAU"
    assert families.get_family(db, actors["unblinded_stat"], family_id).arm == "SAU"
    for blinded in ("statistician", "research_gla"):
        assert families.get_family(db, actors[blinded], family_id).arm == "QX4D"


def test_administrative_services_are_refused_to_others(db: Database, actors: Actors) -> None:
    for who in ("coord_gla", "research_gla", "statistician", "dmc_chair"):
        with pytest.raises(PermissionDenied):
            users.add_user(db, actors[who], "newbie", "statistician")
        with pytest.raises(PermissionDenied):
            audit.history(db, actors[who], "families", "1")
        with pytest.raises(PermissionDenied):
            audit.verify(db, actors[who])
        with pytest.raises(PermissionDenied):
            setup.sync_reference_data_as(db, actors[who])
