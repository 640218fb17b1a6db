"""Engines and sessions.

``make_engine(url)`` sets SQLite up as a real transactional database (foreign
keys on, WAL with ``synchronous = FULL`` so a committed transaction survives a power
failure, ``BEGIN`` issued by SQLAlchemy rather than by the driver, so reads and
writes in one unit of work see one snapshot, and write transactions take the write
lock at once with ``BEGIN IMMEDIATE``).  ``Database`` opens
units of work: ``db.write(actor, reason)`` for a change (one transaction,
audited, checked by the set rules, committed at the end) and ``db.read(actor)`` for a query.
``db.snapshot()`` is a read-only connection whose statements all see one moment of the
database, for readers of many statements that must agree with each other (``noim audit
verify``) while others write.
"""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

if sys.platform != "win32":
    import fcntl

from noim.config import normalise_url
from noim.db import audit, errors, locks, rule_runner, text_rules
from noim.domain.roles import Actor

WRITE_OPTION = "noim_write"

#: SQLite ``PRAGMA synchronous`` of every noim connection: FULL (2) syncs the write-ahead
#: log at each commit, so a committed transaction survives a power failure or an OS crash
#: (NORMAL, 1, would only keep the database consistent, possibly losing the last commits).
SQLITE_SYNCHRONOUS = "FULL"


def make_engine(url: str, *, null_pool: bool = False, echo: bool = False) -> Engine:
    """Create an engine for ``url`` with noim's connection set-up."""
    url = normalise_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if null_pool:
        kwargs["poolclass"] = NullPool
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 60}
        engine = create_engine(url, **kwargs)
        in_memory = url in ("sqlite://", "sqlite:///:memory:")

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys = ON")
            if not in_memory:
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute(f"PRAGMA synchronous = {SQLITE_SYNCHRONOUS}")
            # macOS: fsync() alone leaves the commit in the disk's cache (no effect elsewhere)
            cursor.execute("PRAGMA fullfsync = ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get(WRITE_OPTION, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        text_rules.guard_engine(engine)
        return engine
    if url.startswith("postgresql"):
        # No JIT compilation: noim's statements are short (a page, a unit of work), and on
        # them PostgreSQL's JIT (on above jit_above_cost) spends more compiling than it saves
        # (the coordinators' home page: 420 ms with it, 215 ms without, 10,000 families).
        kwargs["connect_args"] = {"options": "-c jit=off"}
    engine = create_engine(url, **kwargs)
    text_rules.guard_engine(engine)
    return engine


class NoimSession(Session):
    """A session whose flushes check text (``noim.db.text_rules``, first, before any SQL) and
    write audit rows (listeners in ``noim.db.audit``)."""


text_rules.install(NoimSession)
audit.install_listeners(NoimSession)


class Database:
    """A database noim works on: the engine plus units of work bound to an actor."""

    def __init__(self, url: str, *, engine: Engine | None = None) -> None:
        self.url = normalise_url(url)
        self.engine = engine if engine is not None else make_engine(self.url)
        self._write_engine = self.engine.execution_options(**{WRITE_OPTION: True})
        #: SQLite: this process's units of work queue here for the write lock (see ``write``)
        self._sqlite_writers = threading.RLock()
        #: SQLite: how deep this process's writer is in nested units of work (0: none)
        self._sqlite_depth = 0
        #: SQLite: the file the writers of every process queue on (``_sqlite_turn``)
        self._writers_file: Any = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def write(
        self,
        actor: Actor,
        reason: str | None = None,
        *,
        isolation: str | None = None,
        on_wait: Callable[[], None] | None = None,
    ) -> Iterator[NoimSession]:
        """One audited transaction on behalf of ``actor``; committed when the block ends.

        Write units of work run one at a time on every backend: SQLite's ``BEGIN
        IMMEDIATE`` takes the write lock at once; on PostgreSQL the first statement takes a
        transaction-level advisory lock (``noim.db.locks.Lock.WRITES``), so a unit of work
        that checks what is stored and then writes ("is this child already lost to
        follow-up?") never races another.  ``isolation`` (PostgreSQL, e.g. ``REPEATABLE
        READ`` for a freeze's one snapshot) is set before that; ``on_wait`` is called when
        another unit of work holds the lock (to say why nothing happens yet).

        Before the commit the set rules run over the children the transaction touched
        (``noim.db.rule_runner``): a hard violation rolls everything back with a
        ``ValidationError``; a soft one opens a data query in the same transaction.
        ``reason`` (kept in the audit trail) is free text: no control character but tab,
        newline and carriage return (rule ``TXT-001``).
        """
        text_rules.require(text_rules.check("this change", "reason", reason, "audit_log.reason"))
        with self._sqlite_turn(on_wait), self._unit_of_work(actor, reason, isolation, on_wait) as s:
            yield s

    @contextmanager
    def _sqlite_turn(self, on_wait: Callable[[], None] | None) -> Iterator[None]:
        """SQLite: wait for the other units of work in a queue, woken as soon as the one
        before ends, rather than in SQLite's busy handler, which retries after sleeps of up
        to 100 ms: under ten writers at once (the web server) a write waited seconds for a
        lock free most of the time.

        This process's writers queue in a lock; the processes of a database (``noim serve
        --workers N``, a command run beside the server) then queue on an exclusive
        ``flock`` of the file ``<database>-writers`` beside it, which the kernel hands to
        the next process the moment it is released (or its process ends).  Without
        ``fcntl`` (Windows) other processes meet SQLite's busy timeout (60 s) instead.
        """
        if self.dialect != "sqlite":
            yield
            return
        lock = self._sqlite_writers
        waited = False
        got = lock.acquire(blocking=False)
        if not got:
            waited = True
            if on_wait is not None:
                on_wait()
            got = lock.acquire(timeout=60)  # then BEGIN IMMEDIATE waits, as without it
        outermost = got and self._sqlite_depth == 0
        try:
            if got:
                self._sqlite_depth += 1
            if outermost:
                self._flock(on_wait if not waited else None)
            yield
        finally:
            if outermost:
                self._funlock()
            if got:
                self._sqlite_depth -= 1
                lock.release()

    def _flock(self, on_wait: Callable[[], None] | None) -> None:
        """Take the exclusive lock of ``<database>-writers`` (see ``_sqlite_turn``)."""
        if sys.platform == "win32":  # processes queue in SQLite's busy handler
            return
        if self._writers_file is None:
            path = make_url(self.url).database
            if not path or path == ":memory:":
                return
            self._writers_file = open(f"{path}-writers", "a+b")  # noqa: SIM115 (kept open)
        fd = self._writers_file.fileno()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(fd, fcntl.LOCK_EX)

    def _funlock(self) -> None:
        if sys.platform != "win32" and self._writers_file is not None:
            fcntl.flock(self._writers_file.fileno(), fcntl.LOCK_UN)

    @contextmanager
    def _unit_of_work(
        self,
        actor: Actor,
        reason: str | None,
        isolation: str | None,
        on_wait: Callable[[], None] | None,
    ) -> Iterator[NoimSession]:
        session = NoimSession(self._write_engine, autoflush=True, expire_on_commit=False)
        session.info.update(actor=actor, reason=reason, tx_id=uuid.uuid4().hex)
        try:
            if self.dialect == "postgresql":
                if isolation is not None:
                    session.connection(execution_options={"isolation_level": isolation})
                # as SQLite's busy timeout: a writer waits at most a minute, then fails
                session.execute(text("SET LOCAL lock_timeout = '60s'"))
                locks.hold(session, locks.Lock.WRITES, on_wait=on_wait)
            yield session
            session.flush()
            rule_runner.before_commit(session)  # the set rules, over the children touched
            session.commit()
        except DBAPIError as exc:
            session.rollback()
            translated = errors.translate(exc)
            if translated is None:
                raise
            raise translated from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def read(self, actor: Actor | None = None) -> Iterator[NoimSession]:
        """A read-only unit of work (any attempt to flush a change raises)."""
        session = NoimSession(self.engine, autoflush=False, expire_on_commit=False)
        session.info.update(actor=actor, readonly=True)
        try:
            yield session
        finally:
            session.rollback()
            session.close()

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """A read-only transaction in which every statement sees the same committed state.

        PostgreSQL: ``REPEATABLE READ, READ ONLY`` (the snapshot is taken by the first
        statement; it never waits for writers nor makes them wait, and a read-only
        transaction at this level cannot fail to serialize).  SQLite: one read transaction
        (``PRAGMA query_only`` while it lasts), which in WAL mode reads the database as it
        was at its first statement while others commit.
        """
        with self.engine.connect() as conn:
            sqlite = self.dialect == "sqlite"
            if not sqlite:
                conn = conn.execution_options(
                    isolation_level="REPEATABLE READ", postgresql_readonly=True
                )
            transaction = conn.begin()
            try:
                if sqlite:
                    conn.exec_driver_sql("PRAGMA query_only = 1")
                yield conn
            finally:
                transaction.rollback()
                if sqlite:
                    conn.exec_driver_sql("PRAGMA query_only = 0")
                    conn.rollback()

    def refresh_statistics(self) -> None:
        """Bring the query planner's statistics up to date with the data (``ANALYZE``).

        SQLite never gathers them by itself: without them its planner guessed the joins of
        the coordinators' home page wrong (a scan of every family of a site to find 26
        SAEs: 7 ms instead of 0.2 ms at 10,000 families).  Run after bulk writes (the
        demo, a large import) and when ``noim serve`` starts.  SQLite samples at most 1,000
        rows per index (``analysis_limit``: a quarter of a second at 10,000 families);
        PostgreSQL's autovacuum keeps its own up to date, this only makes them current at
        once (tables noim's role does not own are skipped with a notice).  Statistics are
        not trial data: nothing is audited.
        """
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn.exec_driver_sql("PRAGMA analysis_limit = 1000")
            conn.exec_driver_sql("ANALYZE")
            conn.commit()

    def dispose(self) -> None:
        self.engine.dispose()
        if self._writers_file is not None:
            self._writers_file.close()
            self._writers_file = None
