"""Fixtures: a fresh database per test, on SQLite and on PostgreSQL.

Each backend gets one template database per session, migrated to head and
initialised with the NIM trial and one user of each role; each test gets its
own copy (a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on
PostgreSQL).  Tests never share a database.

PostgreSQL: ``--pg-url`` or ``NOIM_TEST_PG_URL`` (default: the role and
database that ``make test`` creates).  When no server answers, PostgreSQL
tests skip with the reason, except under ``CI=true`` where that is a failure.
``--backend sqlite`` or ``--backend postgresql`` runs one backend only.

Parallel runs (pytest-xdist, ``make test`` runs ``-n 2``): every worker process builds its
own templates (database names carry the worker id, see ``worker_tag``; SQLite files live
in the worker's own ``tmp_path_factory`` folder), and every test still gets its own
database, so no test depends on another or on their order.  ``-p no:xdist`` runs serially.
"""

from __future__ import annotations

import copy
import os
import shutil
import sqlite3
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError

from noim.db.session import Database
from noim.domain.roles import Actor
from noim.domain.trialdef import default_definition
from noim.services import setup, users

PG_DEFAULT_URL = "postgresql+psycopg://noim_test:noim_test@127.0.0.1:5432/noim_test"
BACKENDS = ("sqlite", "postgresql")

#: the users every test database has: name -> (role, sites)
TEST_USERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "coord_gla": ("coordinator", ("GLA",)),
    "coord_cro": ("coordinator", ("CRO",)),
    "research_gla": ("researcher", ("GLA",)),
    "research_cro": ("researcher", ("CRO",)),
    "datamanager": ("data_manager", ()),
    "statistician": ("statistician", ()),
    "unblinded_stat": ("unblinded_statistician", ()),
    "dmc_chair": ("dmc_member", ()),
}


def worker_tag() -> str:
    """``gw0``, ``gw1``, ... in a pytest-xdist worker, ``main`` otherwise: part of the name of
    every database a session creates, so parallel workers never share a template."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--pg-url",
        default=os.environ.get("NOIM_TEST_PG_URL", PG_DEFAULT_URL),
        help="PostgreSQL URL of a role allowed to CREATE DATABASE",
    )
    parser.addoption(
        "--backend", choices=("all", *BACKENDS), default="all", help="backends to test"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("--backend")
        backends = BACKENDS if chosen == "all" else (chosen,)
        if metafunc.definition.get_closest_marker("postgresql_only"):
            backends = tuple(b for b in backends if b == "postgresql")
        if metafunc.definition.get_closest_marker("sqlite_only"):
            backends = tuple(b for b in backends if b == "sqlite")
        metafunc.parametrize("backend", backends)


@dataclass
class PgServer:
    url: str
    created: list[str] = field(default_factory=list)

    def url_for(self, name: str) -> str:
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def _admin(self) -> object:
        return create_engine(self.url, isolation_level="AUTOCOMMIT")

    def create(self, name: str, template: str | None = None) -> str:
        engine = create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                suffix = f' TEMPLATE "{template}"' if template else ""
                conn.execute(text(f'CREATE DATABASE "{name}"{suffix}'))
        finally:
            engine.dispose()
        self.created.append(name)
        return self.url_for(name)

    def drop(self, name: str) -> None:
        """Drop a test database; retried, since a backend the test role may not end (an
        autovacuum worker, another session's server process) can briefly hold it."""
        engine = create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            for attempt in range(10):
                try:
                    with engine.connect() as conn:
                        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                    return
                except (OperationalError, ProgrammingError):
                    if attempt == 9:
                        warnings.warn(f"could not drop test database {name}", stacklevel=2)
                        return
                    time.sleep(0.5)
        finally:
            engine.dispose()


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> Iterator[PgServer]:
    url = request.config.getoption("--pg-url")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # no server: skip, or fail in CI
        reason = (
            f"PostgreSQL not reachable at {make_url(url).render_as_string(hide_password=True)} "
            f"({type(exc).__name__}); run `make test` (it starts the local cluster) or set NOIM_TEST_PG_URL"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    finally:
        engine.dispose()
    server = PgServer(url)
    yield server
    for name in server.created:
        server.drop(name)


def _populate_template(url: str) -> None:
    setup.initialise(url, default_definition(), "admin")
    db = Database(url)
    try:
        admin = users.resolve_actor(db, "admin")
        for name, (role, sites) in TEST_USERS.items():
            users.add_user(db, admin, name, role, sites)
    finally:
        db.dispose()


@dataclass
class Templates:
    tmp: Path
    built: dict[str, str] = field(default_factory=dict)
    #: (backend, key) -> (template: SQLite path or PostgreSQL name, what the builder returned)
    prebuilt: dict[tuple[str, str], tuple[str, Any]] = field(default_factory=dict)

    def get(self, backend: str, pg: PgServer | None) -> str:
        if backend not in self.built:
            if backend == "sqlite":
                url = f"sqlite:///{self.tmp / 'template.db'}"
                _populate_template(url)
                self.built[backend] = url
            else:
                assert pg is not None
                name = f"noim_tpl_{worker_tag()}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
                url = pg.create(name)
                _populate_template(url)
                self.built[backend] = name
        return self.built[backend]

    def get_prebuilt(
        self, backend: str, pg: PgServer | None, key: str, build: Callable[[Database, Actors], Any]
    ) -> tuple[str, Any]:
        """A template holding the test template plus what ``build(db, actors)`` adds, built
        once per worker and backend; and what ``build`` returned."""
        if (backend, key) not in self.prebuilt:
            base = self.get(backend, pg)
            if backend == "sqlite":
                path = self.tmp / f"prebuilt_{key}.db"
                shutil.copyfile(base.split(":///", 1)[1], path)
                url, ref = f"sqlite:///{path}", str(path)
            else:
                assert pg is not None
                ref = f"noim_tpl_{key}_{worker_tag()}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
                url = pg.create(ref, template=base)
            database = Database(url)
            try:
                result = build(database, Actors(database))
            finally:
                database.dispose()  # no open connection: PostgreSQL copies from idle templates
            self.prebuilt[(backend, key)] = (ref, result)
        return self.prebuilt[(backend, key)]


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Templates:
    return Templates(tmp_path_factory.mktemp("templates"))


@pytest.fixture
def empty_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a new, empty database (no schema)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'noim.db'}"
        return
    pg: PgServer = request.getfixturevalue("pg_server")
    name = f"noim_t_{uuid.uuid4().hex[:12]}"
    url = pg.create(name)
    yield url
    pg.drop(name)
    pg.created.remove(name)


@pytest.fixture
def db_url(
    backend: str, tmp_path: Path, templates: Templates, request: pytest.FixtureRequest
) -> Iterator[str]:
    """URL of a fresh copy of an initialised NIM database with one user of each role."""
    yield from fresh_db_url(request)


def fresh_db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """``db_url``'s database, for a module that overrides ``db_url`` (the overriding fixture
    asks for ``backend``, ``tmp_path`` and ``templates`` too: ``backend`` is parametrised
    only for the tests whose fixtures name it)."""
    backend: str = request.getfixturevalue("backend")
    tmp_path: Path = request.getfixturevalue("tmp_path")
    templates: Templates = request.getfixturevalue("templates")
    if backend == "sqlite":
        template = templates.get("sqlite", None)
        source = Path(template.split(":///", 1)[1])
        target = tmp_path / "noim.db"
        shutil.copyfile(source, target)
        yield f"sqlite:///{target}"
        return
    pg: PgServer = request.getfixturevalue("pg_server")
    template_name = templates.get("postgresql", pg)
    name = f"noim_t_{uuid.uuid4().hex[:12]}"
    url = pg.create(name, template=template_name)
    yield url
    pg.drop(name)
    pg.created.remove(name)


def prebuilt_copy(
    request: pytest.FixtureRequest, key: str, build: Callable[[Database, Actors], Any]
) -> Iterator[tuple[str, Any]]:
    """For a module's ``db_url`` fixture: the URL of a fresh copy of the test database with
    what ``build(db, actors)`` adds, and (a deep copy of) what ``build`` returned.  The
    build runs once per worker and backend (it is deterministic: seeded, fixed dates), so
    the tests of a module that all start from one trial do not each rebuild it; every test
    still gets its own database."""
    backend: str = request.getfixturevalue("backend")
    tmp_path: Path = request.getfixturevalue("tmp_path")
    templates: Templates = request.getfixturevalue("templates")
    if backend == "sqlite":
        ref, result = templates.get_prebuilt("sqlite", None, key, build)
        target = tmp_path / "noim.db"
        source, dest = sqlite3.connect(ref), sqlite3.connect(target)
        try:  # the SQLite backup API: a consistent copy, the WAL included
            source.backup(dest)
        finally:
            dest.close()
            source.close()
        yield f"sqlite:///{target}", copy.deepcopy(result)
        return
    pg: PgServer = request.getfixturevalue("pg_server")
    ref, result = templates.get_prebuilt("postgresql", pg, key, build)
    name = f"noim_t_{uuid.uuid4().hex[:12]}"
    url = pg.create(name, template=ref)
    yield url, copy.deepcopy(result)
    pg.drop(name)
    pg.created.remove(name)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


class Actors:
    """``actors["coord_gla"]`` -> the Actor of a test user (resolved from the database)."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._cache: dict[str, Actor] = {}

    def __getitem__(self, name: str) -> Actor:
        if name not in self._cache:
            self._cache[name] = users.resolve_actor(self._db, name)
        return self._cache[name]


@pytest.fixture
def actors(db: Database) -> Actors:
    return Actors(db)
