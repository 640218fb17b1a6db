"""`noim audit verify` and `noim audit anchor` while other users write: one consistent
snapshot, so a live database verifies intact (issue 11, points 4 and 10)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from noim.db.models import Family
from noim.db.session import Database
from noim.domain.roles import Actor
from noim.services import anchors, audit, families
from tests.conftest import Actors
from tests.factories import family_with_children


@contextmanager
def writers(db: Database, coordinators: list[tuple[Actor, str]]) -> Iterator[list[int]]:
    """Threads that register families with children and correct them until the block ends;
    yields the number of units of work each has committed so far."""
    stop = threading.Event()
    done = [0] * len(coordinators)
    errors: list[BaseException] = []

    def work(i: int, coord: Actor, site: str) -> None:
        try:
            while not stop.is_set():
                fam = family_with_children(db, coord, site, (4, 30))
                done[i] += 3
                families.correct_child(
                    db, coord, fam.children[0].trial_id, {"sex": "male"}, reason="re-checked"
                )
                done[i] += 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(i, coord, site))
        for i, (coord, site) in enumerate(coordinators)
    ]
    for t in threads:
        t.start()
    try:
        yield done
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == [], errors


def test_verify_is_intact_while_other_users_write(db: Database, actors: Actors) -> None:
    admin = actors["admin"]
    coordinators = [(actors["coord_gla"], "GLA"), (actors["coord_cro"], "CRO")]
    family_with_children(db, actors["coord_gla"], "GLA", (12,))
    results, taken = [], []
    with writers(db, coordinators) as done:
        while sum(done) < 4:  # the writers are under way
            time.sleep(0.01)
        for _ in range(8):
            before = sum(done)
            result = audit.verify(db, admin)
            results.append((result, sum(done) - before))
            taken.append(anchors.take(db, admin))  # the head of one moment, too
    assert sum(committed for _r, committed in results) > 0, "no write overlapped a verify"
    for result, _committed in results:
        assert result.ok, (result.chain.problem, result.data and result.data.problems[:3])
    # and the database is intact once the writers have stopped, up to every anchor
    final = audit.verify(db, admin)
    assert final.ok and final.chain.rows > max(r.chain.rows for r, _c in results)
    for anchor in taken:
        assert audit.verify(db, admin, check_data=False, anchor=anchor).ok


def test_the_snapshot_is_read_only_and_sees_one_moment(db: Database, actors: Actors) -> None:
    count = select(func.count()).select_from(Family)
    with db.snapshot() as conn:
        before = conn.execute(count).scalar_one()
        family_with_children(db, actors["coord_gla"], "GLA", (12,))  # committed meanwhile
        assert conn.execute(count).scalar_one() == before
        with pytest.raises(DBAPIError):
            conn.execute(text("UPDATE audit_head SET last_seq = last_seq"))
    with db.snapshot() as conn:  # the connection goes back to the pool writable
        assert conn.execute(count).scalar_one() == before + 1
    with db.write(actors["admin"]) as s:
        assert s.scalar(count) == before + 1
