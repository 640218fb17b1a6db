"""Imports stay idempotent when several processes import the same file at the same moment.

Issue 11: on PostgreSQL (READ COMMITTED) eight concurrent imports of one file stored eight
copies, because each import looked for the rows already stored before any lock was taken.
Here worker processes run the real ``noim import KIND FILE`` together (released by a
barrier) for every example file, in the order a coordinator loads them: exactly one
process writes, the others exit successfully saying the rows are already stored, and an
ordinary re-import afterwards adds nothing.  On PostgreSQL this rests on the imports lock
(``noim.db.locks``), on SQLite on ``BEGIN IMMEDIATE``; the test runs on both.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, table

from noim.db import locks
from noim.db.models import AuditLog
from noim.db.session import Database
from noim.domain.trialdef import default_definition
from noim.services import demo, users
from noim.services.imports import WAITING, ImportReport, kinds, run_import
from tests.cli_workers import CliWorkers
from tests.conftest import Actors
from tests.factories import registered_families
from tests.test_examples import EXAMPLES, ORDER, before_import

pytestmark = pytest.mark.xdist_group("import_concurrency")  # one set of worker processes

#: processes importing each file at once (four keep the test under a minute on two cores;
#: before the fix the race showed with two, and eight gave eight copies)
WORKERS = 4
#: the table holding each kind's records (None: the kind updates records others created)
UNIT_TABLE = {
    "families": "children",
    "screening": "screening_log",
    "eligibility": None,
    "consents": "consents",
    "assessments": "assessments",
    "placements": "placements",
    "legal-events": "legal_events",
    "visits": None,
    "intervention": "intervention_receipts",
    "service-use": "service_use",
    "withdrawals": "withdrawals",
    "saes": "serious_adverse_events",
    "deviations": "protocol_deviations",
}


def _count(db: Database, name: str) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(table(name))) or 0)


def _writers(db: Database, kind: str, path: Path) -> int:
    """How many units of work wrote audited changes for this import of ``path``."""
    with db.read() as s:
        return int(
            s.scalar(
                select(func.count(func.distinct(AuditLog.tx_id))).where(
                    AuditLog.reason.like(f"import of {kind} from {path.name} (sha256 %")
                )
            )
            or 0
        )


@pytest.fixture(scope="module")
def workers() -> Iterator[CliWorkers]:
    """The worker processes (started once: each imports noim, which takes seconds)."""
    with CliWorkers(WORKERS) as started:
        yield started


def test_concurrent_imports_of_one_file_store_it_once(
    backend: str, empty_url: str, workers: CliWorkers
) -> None:
    assert {kind for kind, _ in ORDER} == set(kinds()) == set(UNIT_TABLE), "every kind is raced"
    registered_families(empty_url, default_definition())
    db = Database(empty_url)
    try:
        admin = users.resolve_actor(db, demo.DEMO_ADMIN)
        family_ids: dict[str, str] = {}
        for kind, name in ORDER:
            before_import(db, admin, kind, family_ids)
            _import_together(db, workers, empty_url, kind, EXAMPLES / name)
            again = run_import(db, admin, kind, EXAMPLES / name)  # the ordinary re-import
            assert again.new_records == 0 and again.unchanged_records > 0, again.summary
            family_ids.update(again.family_ids)
    finally:
        db.dispose()


def _import_together(db: Database, workers: CliWorkers, url: str, kind: str, path: Path) -> None:
    """Every worker runs ``noim import KIND PATH`` at once: one adds, the others are told."""
    unit = UNIT_TABLE[kind]
    before = _count(db, unit) if unit else 0
    results = workers.run(["--database", url, "--user", demo.DEMO_ADMIN, "import", kind, str(path)])
    shown = f"{kind} {path.name}:\n" + "\n".join(f"[exit {c}] {out}" for c, out in results)
    assert [code for code, _ in results] == [0] * WORKERS, shown
    added = [out for _, out in results if out.startswith("added ")]
    assert len(added) == 1, shown
    told = rf"nothing new: all \d+ .+ in {re.escape(str(path))} are already stored\n"
    assert all(re.match(told, out) for _, out in results if out not in added), shown
    assert _writers(db, kind, path) == 1, shown
    if unit:
        assert _count(db, unit) - before == int(added[0].split()[1]), shown


@pytest.mark.postgresql_only
def test_an_import_waits_for_the_import_holding_the_lock_and_says_so(
    backend: str, db: Database, actors: Actors, tmp_path: Path
) -> None:
    path = tmp_path / "families.csv"
    path.write_text(
        "family_ref,site,local_authority,in_care_proceedings,date_of_birth,sex,entered_care_on\n"
        "F1,GLA,GCC,yes,2024-02-14,female,2025-03-03\n",
        encoding="utf-8",
    )
    stages: list[tuple[str, int]] = []
    reports: list[ImportReport] = []

    def progress(stage: str, done: int, _total: int) -> None:
        stages.append((stage, done))

    def second() -> None:
        reports.append(run_import(db, actors["coord_gla"], "families", path, progress=progress))

    with db.write(actors["coord_gla"]) as s:
        assert locks.hold(s, locks.Lock.IMPORTS, on_wait=lambda: None) is False  # it was free
        waiting = threading.Thread(target=second)
        waiting.start()
        deadline = time.monotonic() + 30
        while (WAITING, 0) not in stages and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        assert stages == [(WAITING, 0)], "the second import waits before it reads anything"
        assert waiting.is_alive()
    waiting.join(timeout=60)
    assert stages[:2] == [(WAITING, 0), (WAITING, 1)]
    assert [r.new_records for r in reports] == [1]
