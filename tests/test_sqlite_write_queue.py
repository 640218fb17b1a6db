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


_HOLDER = """
import sys, time
from sqlalchemy import text
from noim.db.session import Database
from noim.services.users import resolve_actor
db = Database(sys.argv[1])
with db.write(resolve_actor(db, "admin"), reason="other process") as s:
    s.execute(text("SELECT 1"))
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
print(time.time(), flush=True)  # released
"""


@pytest.mark.sqlite_only
def test_a_writer_of_another_process_waits_in_the_queue_not_in_sqlites_busy_handler(
    backend: str, db: Database, actors: Actors
) -> None:
    """``noim serve --workers 2``: the processes' writers queue on the lock of the
    ``<database>-writers`` file, told they wait and woken the moment the other ends."""
    import subprocess
    import sys

    assert backend == "sqlite"
    other = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, db.url, "1.0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "holding"
        told: list[float] = []
        with db.write(actors["admin"], reason="this process", on_wait=lambda: told.append(1)) as s:
            s.execute(text("SELECT 1"))
        done = time.time()
        assert told, "the writer was not told it waited for the other process"
        released = float(other.stdout.readline())
        assert other.wait(10) == 0
        # its turn came as the other ended, not after one of the busy handler's sleeps
        assert released - 0.05 <= done < released + 0.3
    finally:
        other.kill()
        other.wait()
