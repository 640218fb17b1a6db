"""Build a SQLite database in a side file, moved into place only once it is complete.

``staged(url)`` yields the URL to build in: for a SQLite file ``noim.db`` that is
``noim.db.partial`` in the same folder (a copy of ``noim.db`` when it exists).  When the block
completes, the side file is checkpointed into one self-contained file, synced, and renamed
over ``noim.db`` in one atomic step (``os.replace``); when the block fails it is removed.  A
process killed part-way leaves ``noim.db`` as it was (absent, or the database it was) and a
``.partial`` file that the next ``staged`` call deletes before it starts again.

Other databases (PostgreSQL, in-memory SQLite) are not staged: ``url`` is yielded unchanged.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from noim.config import Settings
from noim.domain.exceptions import NoimError

PARTIAL_SUFFIX = ".partial"
#: the files SQLite keeps beside a database
_COMPANIONS = ("", "-wal", "-shm", "-journal")


def partial_path(path: Path) -> Path:
    """The side file a staged build of ``path`` is made in."""
    return path.with_name(path.name + PARTIAL_SUFFIX)


def _remove(path: Path) -> None:
    for suffix in _COMPANIONS:
        with suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _seal(partial: Path) -> None:
    """Fold the write-ahead log into the file, so the file alone is the database."""
    conn = sqlite3.connect(partial, isolation_level=None)
    try:
        mode = conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
    finally:
        conn.close()
    if str(mode).lower() != "delete" or Path(f"{partial}-wal").exists():
        raise NoimError(
            f"{partial} is still open in another connection; it was not moved into place"
        )
    _fsync(partial)


@contextmanager
def staged(url: str) -> Iterator[str]:
    """The URL to build in; the result replaces ``url``'s SQLite file when the block completes.

    Close every connection to the yielded URL before the block ends.
    """
    path = Settings(database_url=url, user_name="-").sqlite_path()
    if path is None:
        yield url
        return
    partial = partial_path(path)
    _remove(partial)  # left by an interrupted build: start again
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():  # build on a copy of it (the SQLite backup API: consistent, WAL included)
        source, copy = sqlite3.connect(path), sqlite3.connect(partial)
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()
    try:
        yield f"sqlite:///{partial}"
        _seal(partial)
        if Path(f"{path}-wal").exists():
            raise NoimError(
                f"{path} is open in another process; the new database is left in {partial}"
            )
        os.replace(partial, path)
        with suppress(OSError):  # make the rename durable (a folder cannot be synced everywhere)
            _fsync(path.parent)
    except BaseException:
        if partial.exists() and not Path(f"{path}-wal").exists():
            _remove(partial)
        raise
