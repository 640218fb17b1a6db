"""SQLite: a process's units of work wait for each other in a lock, woken in turn."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text

from noim.db.session import Database
from tests.conftest import Actors


@pytest.mark.sqlite_only
def test_a_second_writer_waits_for_the_first_and_is_told(
    backend: str, db: Database, actors: Actors
) -> None:
    assert backend == "sqlite"
    admin = actors["admin"]
    holding, release = threading.Event(), threading.Event()
    told: list[float] = []
    done: list[float] = []

    def first() -> None:
        with db.write(admin, reason="first") as s:
            s.execute(text("SELECT 1"))
            holding.set()
            release.wait(10)

    def second() -> None:
        with db.write(admin, reason="second", on_wait=lambda: told.append(time.monotonic())) as s:
            s.execute(text("SELECT 1"))
        done.append(time.monotonic())

    a = threading.Thread(target=first)
    a.start()
    assert holding.wait(10)
    b = threading.Thread(target=second)
    b.start()
    time.sleep(0.3)
    assert told and not done  # waiting, and said so
    released = time.monotonic()
    release.set()
    a.join(10)
    b.join(10)
    assert done and done[0] >= released
    assert done[0] - released < 1.0  # woken when the first ended, not after a busy-retry sleep
