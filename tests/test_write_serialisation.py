"""Write units of work run one at a time on PostgreSQL too, as on SQLite.

A service that checks what is stored and then writes ("is this child already lost to
follow-up?") raced under READ COMMITTED: two simultaneous ``declare_lost`` calls for one
child stored two live losses despite rule LTF-006 (found while fixing issue 11, point 2).
``Database.write`` now takes a trial-wide advisory lock first on PostgreSQL
(``noim.db.locks.Lock.WRITES``), as SQLite's ``BEGIN IMMEDIATE`` does.
"""

from __future__ import annotations

import threading
from datetime import date

from sqlalchemy import func, select

from noim.db.models import Child, LossToFollowUp
from noim.db.session import Database
from noim.domain.exceptions import ValidationError
from noim.services import safety
from tests.conftest import Actors
from tests.factories import small_trial

WORKERS = 6


def test_simultaneous_checks_then_writes_store_one_record(db: Database, actors: Actors) -> None:
    trial = small_trial(db, actors, n_families=2)
    family = sorted(trial.children)[0]
    child = trial.children[family][0]
    coord = actors["coord_gla"] if child.startswith("G") else actors["coord_cro"]
    gate = threading.Barrier(WORKERS)
    outcomes: list[str] = []

    def work() -> None:
        gate.wait()
        try:
            safety.declare_lost(db, coord, child, date(2025, 1, 10), "no contact for a year")
            outcomes.append("stored")
        except ValidationError as exc:
            outcomes.append(",".join(p.rule for p in exc.problems))

    threads = [threading.Thread(target=work) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["LTF-006"] * (WORKERS - 1) + ["stored"]
    with db.read() as s:
        live = s.scalar(
            select(func.count())
            .select_from(LossToFollowUp)
            .join(Child, Child.id == LossToFollowUp.child_id)
            .where(Child.trial_id == child, LossToFollowUp.voided_at.is_(None))
        )
    assert live == 1
