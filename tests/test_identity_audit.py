"""Identifiable details in the audit trail: digests, not clear text; reasons; erasure.

The fault (issue 11, point 5): names, health numbers, addresses and phone numbers were
copied in clear into ``audit_log``, which can never be changed, so a corrected or erased
value stayed for ever; identity changes needed no reason.  Each test reads the raw
``audit_log`` as an attacker with the database file would.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select, text, update

from noim.cli import noim_cli
from noim.db.models import AuditLog, ChildIdentity, IdentityKey
from noim.db.session import Database
from noim.domain.exceptions import ValidationError
from noim.services import audit, families, identities, people, people_identity
from tests.conftest import Actors
from tests.factories import family_with_children

NAME, NEW_NAME = "Zebedee", "Zachariah"
CHI = "1203991234"
ADDRESS = "17 Quarrier Lane, Paisley"


def _raw_audit(db: Database) -> str:
    with db.engine.connect() as conn:
        rows = conn.execute(select(AuditLog.old_value, AuditLog.new_value, AuditLog.reason)).all()
    return json.dumps([list(r) for r in rows])


def _run(url: str, user: str, *args: str) -> Result:
    env: dict[str, str | None] = {"NOIM_DATABASE_URL": None, "NOIM_USER": None}
    return CliRunner().invoke(noim_cli, ["--database", url, "--user", user, *args], env=env)


@pytest.fixture
def child(db: Database, actors: Actors) -> str:
    return family_with_children(db, actors["coord_gla"]).children[0].trial_id


def test_identity_values_never_reach_the_audit_trail_in_clear(
    db: Database, actors: Actors, child: str
) -> None:
    coord = actors["coord_gla"]
    families.set_child_identity(db, coord, child, given_name=NAME, health_number=CHI)
    families.set_child_identity(db, coord, child, "birth certificate seen", given_name=NEW_NAME)
    raw = _raw_audit(db)
    for value in (NAME, NEW_NAME, CHI):
        assert value not in raw
    # the history still shows that and when each field changed, as digests
    history = audit.history(db, actors["admin"], "child_identities", "1")
    changed = [r for r in history if r.field == "given_name"]
    assert len(changed) == 1 and changed[0].reason == "birth certificate seen"
    assert changed[0].old.startswith('"hmac-sha256:') and changed[0].new.startswith('"hmac-sha256:')
    assert changed[0].old != changed[0].new
    assert audit.verify(db, actors["datamanager"]).ok


def test_the_same_name_in_two_records_gives_unrelated_digests(db: Database, actors: Actors) -> None:
    coord = actors["coord_gla"]
    a, b = (c.trial_id for c in family_with_children(db, coord, "GLA", (10, 20)).children)
    families.set_child_identity(db, coord, a, family_name="McAllister")
    families.set_child_identity(db, coord, b, family_name="McAllister")
    with db.engine.connect() as conn:
        rows = (
            conn.execute(
                select(AuditLog.new_value).where(
                    AuditLog.table_name == "child_identities", AuditLog.field.is_(None)
                )
            )
            .scalars()
            .all()
        )
    digests = [json.loads(r)["family_name"] for r in rows]
    assert len(digests) == 2 and digests[0] != digests[1]


def test_changing_recorded_details_needs_a_reason_that_does_not_repeat_them(
    db: Database, db_url: str, actors: Actors, child: str
) -> None:
    coord = actors["coord_gla"]
    families.set_child_identity(db, coord, child, given_name=NAME)
    with db.engine.connect() as conn:
        before = conn.scalar(select(func.count()).select_from(AuditLog))
    with pytest.raises(ValidationError) as no_reason:
        families.set_child_identity(db, coord, child, given_name=NEW_NAME)
    assert no_reason.value.problems[0].rule == "IDN-002"
    with pytest.raises(ValidationError) as repeats:
        families.set_child_identity(
            db, coord, child, f"was {NAME}, now corrected", given_name=NEW_NAME
        )
    problem = repeats.value.problems[0]
    assert problem.rule == "IDN-003" and NAME not in str(problem.value)
    with db.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(AuditLog)) == before
    # adding a detail not recorded yet is recording, not changing: no reason needed
    families.set_child_identity(db, coord, child, health_number=CHI)
    # the same rules for birth parents and carers, from the command line
    parent = people.add_parent(db, coord, family_with_children(db, coord).trial_id, "mother")
    people_identity.set_parent_identity(db, coord, parent.id, address=ADDRESS)
    out = _run(db_url, "coord_gla", "parent", "identity", str(parent.id), "--address", "1 New St")
    assert out.exit_code == 1 and "IDN-002" in out.output
    out = _run(
        db_url,
        "coord_gla",
        "parent",
        "identity",
        str(parent.id),
        "--address",
        "1 New St",
        "--reason",
        "moved house",
    )
    assert out.exit_code == 0, out.output


def test_erasure_leaves_nothing_linkable_and_the_trail_verifiable(
    db: Database, db_url: str, actors: Actors, child: str
) -> None:
    coord = actors["coord_gla"]
    families.set_child_identity(db, coord, child, given_name=NAME, health_number=CHI)
    with db.engine.connect() as conn:
        key = conn.scalar(select(IdentityKey.key_hex))
    out = _run(
        db_url,
        "coord_gla",
        "child",
        "identity",
        child,
        "--erase",
        "--reason",
        "erasure requested by the birth mother (ref DP-12)",
    )
    assert out.exit_code == 0, out.output
    assert families.get_child_identity(db, coord, child) == dict.fromkeys(
        ("given_name", "family_name", "social_work_ref", "health_number")
    )
    with db.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(IdentityKey)) == 0
    raw = _raw_audit(db)
    assert NAME not in raw and CHI not in raw and key not in raw
    verify = _run(db_url, "datamanager", "audit", "verify")
    assert verify.exit_code == 0, verify.output
    # the erasure itself is audited, with its reason
    history = audit.history(db, actors["admin"], "child_identities", "1")
    erased = [r for r in history if r.reason and r.reason.startswith("erasure on request")]
    assert {r.field for r in erased} == {"given_name", "health_number"}
    assert all(r.new == "null" for r in erased)


def test_a_value_changed_behind_noims_back_is_still_found(
    db: Database, actors: Actors, child: str
) -> None:
    families.set_child_identity(db, actors["coord_gla"], child, given_name=NAME)
    with db.engine.begin() as conn:
        conn.execute(update(ChildIdentity).values(given_name="Mallory"))
    result = audit.verify(db, actors["datamanager"])
    assert not result.ok
    assert any("child_identities row 1 field given_name" in p for p in result.data.problems)


def test_erasing_needs_a_reason_and_the_right_to_write_identities(
    db: Database, db_url: str, actors: Actors, child: str
) -> None:
    families.set_child_identity(db, actors["coord_gla"], child, given_name=NAME)
    out = _run(db_url, "coord_gla", "child", "identity", child, "--erase")
    assert out.exit_code == 1 and "needs a reason" in out.output
    with pytest.raises(Exception, match="may not"):
        identities.erase(db, actors["datamanager"], "child", child, "asked")
    with pytest.raises(Exception, match="may not"):
        identities.erase(db, actors["coord_cro"], "child", child, "asked")
    assert families.get_child_identity(db, actors["coord_gla"], child)["given_name"] == NAME
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM identity_keys")).scalar() == 1
