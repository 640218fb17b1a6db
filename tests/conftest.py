"""Fixtures: a fresh database per test, on SQLite and on PostgreSQL.

Each backend gets one template database per session, migrated to head and
initialised with the NIM trial and one user of each role; each test gets its
own copy (a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on
PostgreSQL).  Tests never share a database.

PostgreSQL: ``--pg-url`` or ``NOIM_TEST_PG_URL`` (default: the role and
database that ``make test`` creates).  When no server answers, PostgreSQL
tests skip with the reason, except under ``CI=true`` where that is a failure.
``--backend sqlite`` or ``--backend postgresql`` runs one backend only.

Parallel runs (pytest-xdist, ``make test`` runs ``-n 2``): the templates are built once
per run, by the first worker that needs one, under a file lock, and only read afterwards
(SQLite files in the run's shared temporary folder, PostgreSQL databases named after the
run, see ``Templates``); every test still gets its own database, so no test depends on
another or on their order.  ``-p no:xdist`` runs serially.

PostgreSQL drops a test's database in batches (``PgServer.release``): every ``DROP
DATABASE`` forces a checkpoint of the whole cluster, which one drop per test made the
suite's largest single cost on PostgreSQL.

Property tests: ``examples(n)`` and the ``thorough`` hypothesis profile.

Passwords: the tests hash with Argon2id at its smallest cost (``cheap_password_hashes``);
production parameters are asked for explicitly (``strong_password_hashes``).
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import os
import pickle
import sqlite3
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError

from noim.db.session import Database
from noim.domain.roles import Actor
from noim.domain.trialdef import default_definition
from noim.services import auth, setup, users

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


#: the environment variable naming this run (set by the controlling process, inherited by the
#: pytest-xdist workers): part of the names of the run's shared PostgreSQL templates
RUN_ENV = "NOIM_TEST_RUN"
#: a test's PostgreSQL database is dropped with this many others (see ``PgServer.release``)
PG_DROP_BATCH = 20


#: hypothesis: ``make test`` runs the default profile; ``pytest --hypothesis-profile=thorough``
#: runs every property test with ten times its examples (1,000 where a test names none)
settings.register_profile("thorough", max_examples=1000)


def examples(n: int) -> int:
    """A property test's ``max_examples``: ``n`` in the default profile, ``10 * n`` in the
    thorough one (the slowest property tests run few examples by default)."""
    return max(1, n * settings.default.max_examples // 100)


def worker_tag() -> str:
    """``gw0``, ``gw1``, ... in a pytest-xdist worker, ``main`` otherwise: part of the name of
    the databases a worker creates for itself."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def run_tag() -> str:
    """This run's name (the same in every worker; see ``pytest_configure``)."""
    return os.environ[RUN_ENV]


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controlling process (or a serial run)
        os.environ[RUN_ENV] = uuid.uuid4().hex[:8]


def pytest_unconfigure(config: pytest.Config) -> None:
    """The controlling process drops the run's shared PostgreSQL templates (the workers,
    which built them, may end before others stop cloning them)."""
    if hasattr(config, "workerinput") or config.getoption("--backend") == "sqlite":
        return
    url = config.getoption("--pg-url")
    engine = create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            names = conn.scalars(
                text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
                {"p": f"noim\\_tpl\\_%\\_{run_tag()}"},
            ).all()
    except Exception:  # no server: nothing was built on it
        return
    finally:
        engine.dispose()
    server = PgServer(url)
    for name in names:
        server.drop(name)


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
    #: test databases released but not dropped yet (``release``)
    released: list[str] = field(default_factory=list)

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

    def release(self, name: str) -> None:
        """A test is done with database ``name``: drop it with ``PG_DROP_BATCH - 1`` others.

        Every ``DROP DATABASE`` forces a checkpoint, which writes every dirty page of the
        cluster (the other worker's test database too) and makes the next writes log whole
        pages; dropped one per test, that was the largest cost of the PostgreSQL tests.
        Dropped in a batch, the first drop's checkpoint finds the cluster dirty and the
        others nearly nothing.  What is left is dropped at the end of the session."""
        self.released.append(name)
        if len(self.released) >= PG_DROP_BATCH:
            self.drop_released()

    def drop_released(self) -> None:
        for name in self.released:
            self.drop(name)
            self.created.remove(name)
        self.released.clear()

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
    server.released.clear()
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


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the block: one process
    of the run at a time."""
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def sqlite_copy(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database, its write-ahead log included (backup API)."""
    src, dest = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dest)
    finally:
        dest.close()
        src.close()


@dataclass
class Templates:
    """The template databases of a run: the initialised test database (``get``) and the
    trials tests start from (``get_prebuilt``).

    Each is built once per run and backend, by the first process that needs it, under a
    file lock in ``shared`` (the run's temporary folder, common to the pytest-xdist
    workers); the others wait for it and then only read it.  A template is never written
    after it is built: tests get copies (a file copy on SQLite, ``CREATE DATABASE ...
    TEMPLATE`` on PostgreSQL, which needs no connection to the template to be open).
    SQLite templates are files in ``shared``; PostgreSQL ones are named after the run
    (``run_tag``) and dropped by the controlling process at its end (``pytest_unconfigure``).
    """

    shared: Path
    #: (backend, key) -> (template: SQLite path or PostgreSQL name, what the builder returned)
    known: dict[tuple[str, str], tuple[str, Any]] = field(default_factory=dict)

    def built_once(
        self, backend: str, pg: PgServer | None, key: str, source: str | None,
        build: Callable[[str], Any],
    ) -> tuple[str, Any]:  # fmt: skip
        """The template ``key``: a copy of ``source`` (or an empty database) that
        ``build(url)`` filled, built once per run; and what ``build`` returned."""
        if (backend, key) in self.known:
            return self.known[(backend, key)]
        done = self.shared / f"{backend}-{key}.done"
        with file_lock(self.shared / f"{backend}-{key}.lock"):
            if backend == "sqlite":
                ref = str(self.shared / f"{key}.db")
            else:
                ref = f"noim_tpl_{key}_{run_tag()}"
            if not done.exists():
                if backend == "sqlite":
                    for stale in Path(ref).parent.glob(Path(ref).name + "*"):
                        stale.unlink()  # a build that failed part way
                    if source is not None:
                        sqlite_copy(Path(source), Path(ref))
                    url = f"sqlite:///{ref}"
                else:
                    assert pg is not None
                    pg.drop(ref)  # a build that failed part way
                    url = pg.url_for(ref)
                    pg.create(ref, template=source)
                    pg.created.remove(ref)  # the controlling process drops it, at the end
                result = build(url)
                done.write_bytes(pickle.dumps(result))
            self.known[(backend, key)] = (ref, pickle.loads(done.read_bytes()))
        return self.known[(backend, key)]

    def get(self, backend: str, pg: PgServer | None) -> str:
        """The initialised test database: SQLite path or PostgreSQL name."""
        return self.built_once(backend, pg, "base", None, _populate_template)[0]

    def get_prebuilt(
        self, backend: str, pg: PgServer | None, key: str, build: Callable[[Database, Actors], Any]
    ) -> tuple[str, Any]:
        """A template holding the test database plus what ``build(db, actors)`` adds, built
        once per run and backend; and what ``build`` returned (it must pickle)."""

        def fill(url: str) -> Any:
            database = Database(url)
            try:
                return build(database, Actors(database))
            finally:
                database.dispose()  # no open connection: PostgreSQL copies from idle templates

        return self.built_once(backend, pg, f"prebuilt_{key}", self.get(backend, pg), fill)


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Templates:
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if "PYTEST_XDIST_WORKER" in os.environ else base  # xdist: the run's
    folder = shared / "templates"
    folder.mkdir(exist_ok=True)
    return Templates(folder)


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
    pg.release(name)


@pytest.fixture
def db_url(
    backend: str, tmp_path: Path, templates: Templates, request: pytest.FixtureRequest
) -> Iterator[str]:
    """URL of a fresh copy of an initialised NIM database with one user of each role."""
    yield from fresh_db_url(request)


def copy_of(request: pytest.FixtureRequest, template: str) -> Iterator[str]:
    """The URL of a new copy of ``template`` (SQLite path or PostgreSQL name) for one test."""
    backend: str = request.getfixturevalue("backend")
    if backend == "sqlite":
        tmp_path: Path = request.getfixturevalue("tmp_path")
        target = tmp_path / "noim.db"
        sqlite_copy(Path(template), target)
        yield f"sqlite:///{target}"
        return
    pg: PgServer = request.getfixturevalue("pg_server")
    name = f"noim_t_{uuid.uuid4().hex[:12]}"
    url = pg.create(name, template=template)
    yield url
    pg.release(name)


def fresh_db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """``db_url``'s database, for a module that overrides ``db_url`` (the overriding fixture
    asks for ``backend``, ``tmp_path`` and ``templates`` too: ``backend`` is parametrised
    only for the tests whose fixtures name it)."""
    backend: str = request.getfixturevalue("backend")
    templates: Templates = request.getfixturevalue("templates")
    pg = request.getfixturevalue("pg_server") if backend == "postgresql" else None
    yield from copy_of(request, templates.get(backend, pg))


def prebuilt_copy(
    request: pytest.FixtureRequest, key: str, build: Callable[[Database, Actors], Any]
) -> Iterator[tuple[str, Any]]:
    """For a module's ``db_url`` fixture: the URL of a fresh copy of the test database with
    what ``build(db, actors)`` adds, and (a deep copy of) what ``build`` returned.  The
    build runs once per run and backend (``Templates``: it is deterministic, seeded, fixed
    dates, and what it returns must pickle), so the tests that all start from one trial do
    not each rebuild it; every test still gets its own database.  ``key`` names the build:
    modules that build the same trial share it."""
    backend: str = request.getfixturevalue("backend")
    templates: Templates = request.getfixturevalue("templates")
    pg = request.getfixturevalue("pg_server") if backend == "postgresql" else None
    ref, result = templates.get_prebuilt(backend, pg, key, build)
    for url in copy_of(request, ref):
        yield url, copy.deepcopy(result)


def starting_from(
    key: str, build: Callable[[Database, Actors], Any], *, fixture: str = "trial"
) -> tuple[Any, Any, Any]:
    """Fixtures for a module whose tests asking for ``fixture`` start from a trial that
    ``build(db, actors)`` makes, built once per run and backend (``prebuilt_copy``)::

        prebuilt, db_url, trial = starting_from("small_trial_16", build)

    ``db_url`` is then a copy of that trial for the tests that ask for ``fixture`` (which
    gives what ``build`` returned), and the initialised test database for the others.
    Modules passing the same ``key`` must pass the same ``build``: they share the trial."""

    @pytest.fixture(name="prebuilt")
    def prebuilt(
        backend: str, tmp_path: Path, templates: Templates, request: pytest.FixtureRequest
    ) -> Iterator[tuple[str, Any]]:
        yield from prebuilt_copy(request, key, build)

    @pytest.fixture(name="db_url")
    def db_url(
        backend: str, tmp_path: Path, templates: Templates, request: pytest.FixtureRequest
    ) -> Iterator[str]:
        if fixture in request.fixturenames:
            yield request.getfixturevalue("prebuilt")[0]
        else:
            yield from fresh_db_url(request)

    @pytest.fixture(name=fixture)
    def built(db: Database, prebuilt: tuple[str, Any]) -> Any:
        return prebuilt[1]

    return prebuilt, db_url, built


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


#: the production password hasher (``strong_password_hashes``)
_STRONG_HASHER = auth._hasher


def _cheap_hasher() -> Any:
    from argon2 import PasswordHasher

    # Argon2id, one pass over 8 KiB in one lane: argon2-cffi's smallest parameters
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashes() -> Iterator[None]:
    """Passwords hashed in the tests are Argon2id at its smallest cost.

    The production parameters (argon2-cffi's defaults: 64 MiB, three passes, four lanes)
    cost a tenth of a second of both cores per hash and per login, and the tests log in
    hundreds of times; a hash stores its parameters, so a login checks a cheap hash
    cheaply.  Only this fixture changes them, in the test process only (a ``noim`` run
    in a subprocess hashes as in production); a test about the parameters asks for
    ``strong_password_hashes``."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(auth, "_hasher", _cheap_hasher)
        m.setattr(auth, "_DUMMY_HASH", None)
        yield


@pytest.fixture
def strong_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The production password hasher, for a test that checks what it stores."""
    monkeypatch.setattr(auth, "_hasher", _STRONG_HASHER)
    monkeypatch.setattr(auth, "_DUMMY_HASH", None)
