"""Users, roles and site memberships."""

from __future__ import annotations

import pytest

from noim.db.session import Database
from noim.domain.exceptions import (
    AlreadyExists,
    NotFound,
    PermissionDenied,
    ReasonRequired,
    UnknownUser,
    ValidationError,
)
from noim.domain.roles import ROLE_SPECS, Capability, Role
from noim.services import users
from tests.conftest import TEST_USERS, Actors


def test_one_user_of_each_role_exists(db: Database, actors: Actors) -> None:
    roles = {u.role for u in users.list_users(db, actors["admin"])}
    assert roles == {r.value for r in Role}


def test_role_table_matches_the_brief() -> None:
    assert ROLE_SPECS[Role.COORDINATOR].site_scoped and not ROLE_SPECS[Role.COORDINATOR].blinded
    assert ROLE_SPECS[Role.STATISTICIAN].blinded
    assert not ROLE_SPECS[Role.UNBLINDED_STATISTICIAN].blinded
    assert ROLE_SPECS[Role.RESEARCHER].blinded and ROLE_SPECS[Role.RESEARCHER].site_scoped
    readers_of_identities = {
        r for r, spec in ROLE_SPECS.items() if Capability.READ_IDENTIFIABLE in spec.capabilities
    }
    assert readers_of_identities == {Role.ADMINISTRATOR, Role.COORDINATOR}
    see_arm = {r for r, spec in ROLE_SPECS.items() if Capability.SEE_ARM in spec.capabilities}
    assert not {r for r, spec in ROLE_SPECS.items() if spec.blinded} & see_arm


def test_resolve_actor_carries_sites(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    assert coord.role is Role.COORDINATOR and coord.site_codes == {"GLA"}
    assert actors["statistician"].all_sites


@pytest.mark.parametrize(
    ("name", "role", "sites", "error", "fragment"),
    [
        ("x", "statistician", (), ValidationError, "2-64 characters"),
        (
            "new_coord",
            "coordinator",
            (),
            ValidationError,
            "at least one --site for the coordinator role",
        ),
        (
            "new_stat",
            "statistician",
            ("GLA",),
            ValidationError,
            "no --site: the statistician role works across all sites",
        ),
        ("new_user", "boss", (), ValidationError, "got 'boss'; expected one of administrator"),
        (
            "new_coord",
            "coordinator",
            ("EDI",),
            ValidationError,
            "got 'EDI'; expected a site code: CRO, GLA",
        ),
        ("coord_gla", "coordinator", ("GLA",), AlreadyExists, "already exists"),
    ],
)
def test_add_user_refusals(
    db: Database,
    actors: Actors,
    name: str,
    role: str,
    sites: tuple[str, ...],
    error: type[Exception],
    fragment: str,
) -> None:
    with pytest.raises(error, match=fragment):
        users.add_user(db, actors["admin"], name, role, sites)


def test_only_administrators_manage_users(db: Database, actors: Actors) -> None:
    for name in TEST_USERS:
        with pytest.raises(PermissionDenied, match="may not add users"):
            users.add_user(db, actors[name], "someone", "statistician")
    assert [u.name for u in users.list_users(db, actors["coord_gla"])] == ["coord_gla"]


def test_update_role_sites_and_status(db: Database, actors: Actors) -> None:
    admin = actors["admin"]
    info = users.update_user(db, admin, "coord_gla", reason="covers Croydon too", add_sites=["CRO"])
    assert info.sites == ("CRO", "GLA")
    info = users.update_user(
        db, admin, "coord_gla", reason="back to Glasgow only", remove_sites=["CRO"]
    )
    assert info.sites == ("GLA",)
    info = users.update_user(db, admin, "coord_gla", reason="Croydon again", add_sites=["CRO"])
    assert info.sites == ("CRO", "GLA")
    users.update_user(db, admin, "research_cro", reason="left the team", active=False)
    with pytest.raises(UnknownUser, match="deactivated"):
        users.resolve_actor(db, "research_cro")
    with pytest.raises(ReasonRequired):
        users.update_user(db, admin, "coord_gla", reason=" ", role="researcher")
    with pytest.raises(NotFound):
        users.update_user(db, admin, "nobody", reason="x", active=False)
    with pytest.raises(ValidationError, match="not to deactivate yourself"):
        users.update_user(db, admin, "admin", reason="x", active=False)
    with pytest.raises(ValidationError, match="at least one --site"):
        users.update_user(db, admin, "research_gla", reason="x", remove_sites=["GLA"])


def test_unknown_user_says_how_to_fix_it(db: Database) -> None:
    with pytest.raises(UnknownUser, match="noim users add ghost --role ROLE"):
        users.resolve_actor(db, "ghost")
