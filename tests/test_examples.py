"""Every example file in examples/ imports into the twelve registered families they name
(twice: the second time adds nothing), in the order a coordinator would load them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from noim.db.session import Database
from noim.domain.exceptions import ImportRejected, PermissionDenied
from noim.domain.roles import Actor
from noim.domain.trialdef import default_definition
from noim.services import consent, demo, economics, families, randomisation, users
from noim.services.imports import ARM_REVEALING_KINDS, run_import
from tests.factories import registered_families

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
#: kind -> example file, in load order
ORDER = [
    ("families", "families.csv"),
    ("screening", "screening.csv"),
    ("eligibility", "eligibility.csv"),
    ("consents", "consents.csv"),
    ("assessments", "assessments-long.csv"),
    ("assessments", "assessments-wide.csv"),
    ("placements", "placements.csv"),
    ("legal-events", "legal-events.csv"),
    ("visits", "visits.csv"),
    ("intervention", "intervention.csv"),
    ("service-use", "service-use.csv"),
    ("withdrawals", "withdrawals.csv"),
    ("saes", "saes.csv"),
    ("deviations", "deviations.csv"),
]


@pytest.mark.sqlite_only
def test_every_example_imports_into_the_demo(backend: str, tmp_path: Path) -> None:
    assert backend == "sqlite"
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    registered_families(url, default_definition())
    db = Database(url)
    try:
        admin = users.resolve_actor(db, demo.DEMO_ADMIN)
        # the data manager imports every kind but the one that reveals the arm (blinded)
        manager = users.resolve_actor(db, "datamanager")
        assert sorted(p.name for p in EXAMPLES.glob("*.csv")) == sorted(f for _k, f in ORDER)
        family_ids: dict[str, str] = {}
        for kind, name in ORDER:
            before_import(db, admin, kind, family_ids)
            importer = manager
            if kind in ARM_REVEALING_KINDS:
                with pytest.raises(PermissionDenied, match="reveals the allocated arm"):
                    run_import(db, manager, kind, EXAMPLES / name, dry_run=True)
                importer = admin
            if kind == "service-use":  # the example records a service that reveals the arm
                with pytest.raises(ImportRejected, match="2 problem"):
                    run_import(db, manager, kind, EXAMPLES / name, dry_run=True)
                importer = admin
            report = run_import(db, importer, kind, EXAMPLES / name)
            family_ids.update(report.family_ids)
            assert report.new_records > 0, f"{name}: {report.summary}"
            again = run_import(db, importer, kind, EXAMPLES / name)
            assert again.new_records == 0, f"{name} twice: {again.summary}"
    finally:
        db.dispose()


def before_import(db: Database, admin: Actor, kind: str, family_ids: dict[str, str]) -> None:
    """What must be stored before the example file of ``kind`` can be imported (``family_ids``:
    the trial IDs examples/families.csv gave, by family_ref)."""
    if kind == "visits":  # visits exist once a family is randomised
        randomisation.setup(db, admin, 20240501)
        consent.decide_eligibility(db, admin, "G-0001-01-O", True, date(2017, 2, 22))
        # the second child joined G-0001-Z through examples/families.csv
        consent.decide_eligibility(db, admin, "G-0001-02-P", True, date(2025, 8, 2))
        consent.record_consent(db, admin, "G-0001-02-P", "local_authority", "3.1", date(2025, 8, 2))
        randomisation.randomise(db, admin, "G-0001-Z")
    if kind == "intervention":  # receipt is recorded for randomised families
        _randomise_f3(db, admin, family_ids["F3"])
    if kind == "service-use":  # priced by unit costs the data manager keeps
        manager = users.resolve_actor(db, "datamanager")
        for code, unit in (("sw_hour", "hour"), ("nim_session", "session")):
            economics.add_unit_cost(db, manager, code, code, unit, Decimal(50), 2024)


def _randomise_f3(db: Database, admin: Actor, family: str) -> None:
    """Family F3 of examples/families.csv (one child, in care from 2025-06-20), randomised
    on 2025-07-01 (back-dated, as tests may), so examples/intervention.csv can record that
    its service started."""
    (child,) = families.get_family(db, admin, family).children
    consent.decide_eligibility(db, admin, child.trial_id, True, date(2025, 6, 24))
    consent.record_consent(db, admin, child.trial_id, "local_authority", "3.1", date(2025, 6, 25))
    at = datetime(2025, 7, 1, 10, tzinfo=UTC)
    randomisation.randomise(db, admin, family, randomised_at=at)
