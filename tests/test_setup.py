"""noim init: schema, trial definition, reference data, first administrator; any trial."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from noim.db.models import (
    Arm,
    ArmSiteLabel,
    DecisionType,
    LocalAuthority,
    RoleRow,
    Site,
    TimepointRow,
    Trial,
    User,
)
from noim.db.session import Database
from noim.domain.exceptions import AlreadyInitialised
from noim.domain.legal import DECISION_TYPES
from noim.domain.roles import Role
from noim.domain.trialdef import builtin_definition, default_definition
from noim.services import audit, families, setup, users


def test_init_loads_the_nim_definition(empty_url: str) -> None:
    result = setup.initialise(empty_url, default_definition(), "trialmanager")
    assert result.short_name == "BeST?"
    assert result.sites == ("GLA", "CRO")
    db = Database(empty_url)
    try:
        with db.read() as s:
            trial = s.get(Trial, 1)
            assert trial is not None and trial.definition_sha256 == default_definition().sha256
            assert s.scalars(select(Site.code).order_by(Site.id)).all() == ["GLA", "CRO"]
            assert s.scalar(select(func.count()).select_from(LocalAuthority)) == 3
            assert s.scalars(select(Arm.code).order_by(Arm.sort_order)).all() == ["NIM", "SAU"]
            labels = {(r.arm_code, r.label) for r in s.scalars(select(ArmSiteLabel))}
            assert ("NIM", "GIFT") in labels and ("NIM", "LIFT") in labels
            assert s.scalars(select(TimepointRow.code).order_by(TimepointRow.sort_order)).all() == [
                "baseline",
                "15m",
                "30m",
            ]
            assert s.scalar(select(func.count()).select_from(RoleRow)) == len(Role)
            assert s.scalar(select(func.count()).select_from(DecisionType)) == len(DECISION_TYPES)
            admin = s.scalar(select(User).where(User.name == "trialmanager"))
            assert admin is not None and admin.role_code == "administrator"
            assert setup.stored_definition(s).trial.code == "BEST"
        actor = users.resolve_actor(db, "trialmanager")
        assert audit.verify(db, actor).ok
    finally:
        db.dispose()


def test_second_init_is_refused(db_url: str) -> None:
    with pytest.raises(AlreadyInitialised, match="already holds a trial"):
        setup.initialise(db_url, default_definition(), "someone")


def test_a_different_trial_initialises_and_works(empty_url: str) -> None:
    definition = builtin_definition("example")
    setup.initialise(empty_url, definition, "boss")
    db = Database(empty_url)
    try:
        boss = users.resolve_actor(db, "boss")
        users.add_user(db, boss, "leeds_coord", "coordinator", ["LEE"])
        coord = users.resolve_actor(db, "leeds_coord")
        fam = families.register_family(db, coord, "LEE", "LEED")
        assert fam.trial_id.startswith("LE-0001-")
        child = families.add_child(
            db,
            coord,
            fam.trial_id,
            date(2023, 5, 1),
            "male",
            date(2024, 6, 1),
            "en.C1",
            today=date(2025, 1, 1),
        )
        assert child.trial_id.startswith("LE-0001-01-")
        with db.read() as s:
            assert s.scalars(select(Arm.code).order_by(Arm.sort_order)).all() == ["INT", "CTL"]
            assert s.scalar(select(Arm.ratio).where(Arm.code == "INT")) == 2
            assert setup.stored_definition(s).randomisation.method == "blocks"
        assert audit.verify(db, boss).ok
    finally:
        db.dispose()


def test_stored_definition_is_each_databases_own(db: Database, tmp_path: Path) -> None:
    """The parsed definition is kept per process (pages read it on every request), keyed by
    the stored text: two databases of two trials, read in turn, each get their own."""
    other_url = f"sqlite:///{tmp_path / 'example.db'}"
    setup.initialise(other_url, builtin_definition("example"), "boss")
    other = Database(other_url)
    try:
        for _ in range(2):
            with db.read() as s:
                nim = setup.stored_definition(s)
            with other.read() as s:
                example = setup.stored_definition(s)
            assert nim.trial.code == "BEST" and nim.sha256 == default_definition().sha256
            assert example.randomisation.method == "blocks"
            assert "LEE" in {x.code for x in example.sites}
    finally:
        other.dispose()


def test_reference_data_sync_is_idempotent(db: Database, actors: object) -> None:
    admin = users.resolve_actor(db, "admin")
    assert setup.sync_reference_data_as(db, admin) == 0
