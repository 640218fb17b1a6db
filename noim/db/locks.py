"""Trial-wide locks that serialise units of work which must not interleave.

A unit of work that looks at what is stored and then writes according to what it saw
("is this row already stored?", "is this visit still open?") must not run beside another
that does the same, or both see the same state and both write.  On SQLite nothing more is
needed: a write unit of work begins with ``BEGIN IMMEDIATE`` and holds the database's
write lock from its first statement.  On PostgreSQL (READ COMMITTED) ``hold`` takes a
transaction-level advisory lock, ``pg_advisory_xact_lock(classid, objid)`` with
``classid`` = ``CLASS_ID`` ('noim' in ASCII) and ``objid`` the lock's number: the second
unit of work waits until the first has committed or rolled back, and, since each
statement under READ COMMITTED sees everything committed before it started, every read
that follows sees what the first one wrote.  The lock must therefore be the first
statement of the unit of work.  It is released when the unit of work ends, whatever the
outcome (no lock outlives its transaction, even when a process dies).

In ``pg_locks`` the locks show as ``locktype = 'advisory'``, ``classid = 1852795245``.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

#: the first key of every noim advisory lock: 'noim' in ASCII (0x6E6F696D)
CLASS_ID = 0x6E6F696D


class Lock(IntEnum):
    """The trial-wide locks (the second key of the advisory lock)."""

    #: every write unit of work (``noim.db.session.Database.write``), one at a time: what
    #: ``BEGIN IMMEDIATE`` gives on SQLite, so no check-then-write can race on PostgreSQL
    WRITES = 0
    #: every import (``noim.services.imports.run_import``), whatever its kind, one at a time
    IMPORTS = 1


def hold(s: Session, lock: Lock, on_wait: Callable[[], None] | None = None) -> bool:
    """Hold ``lock`` until the unit of work ``s`` ends; call it before anything else in ``s``.

    ``on_wait`` is called once, before waiting, when another unit of work holds the lock
    (to tell the user why nothing happens); returns whether it had to wait.  On SQLite
    this does nothing and returns False (see the module).
    """
    if s.get_bind().dialect.name != "postgresql":
        return False
    if on_wait is not None:
        if s.scalar(select(func.pg_try_advisory_xact_lock(CLASS_ID, int(lock)))):
            return False
        on_wait()
    s.execute(select(func.pg_advisory_xact_lock(CLASS_ID, int(lock))))
    return on_wait is not None
