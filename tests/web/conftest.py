"""Fixtures of the web application's tests.

* ``app`` / ``client``: the application over the ``db`` fixture (a fresh database per test,
  both backends; every test user has the password ``TEST_PASSWORD``).
* ``login(client, name)``, ``csrf(client)``, ``post(client, url, data)``.
* ``count_statements(db)``: how many SQL statements a block runs.
* ``web_demo``: a 40-family demonstration trial per backend, built once per run and only
  read (its users have the demo password); ``demo_login(web_demo, name)`` gives a client on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from sqlalchemy import event, insert, select
from starlette.testclient import TestClient

from noim.db.base import utcnow
from noim.db.models import User, UserCredential
from noim.db.session import Database
from noim.domain.trialdef import default_definition
from noim.services import auth, demo
from noim.web.app import create_app
from noim.web.settings import WebSettings
from tests.conftest import BACKENDS, Templates

TEST_PASSWORD = "correct horse battery staple"
BASE_URL = "http://127.0.0.1"
DEMO_SEED = 20_261_206
DEMO_AS_OF = date(2026, 6, 30)

_HASH: dict[str, str] = {}


def password_hash() -> str:
    if "h" not in _HASH:
        _HASH["h"] = auth.hash_password(TEST_PASSWORD)
    return _HASH["h"]


def give_passwords(db: Database, must_change: bool = False) -> None:
    """Every user without a password gets ``TEST_PASSWORD`` (one hash, inserted directly:
    credentials are not audited row by row, and hashing per test would be slow)."""
    now = utcnow()
    with db.engine.begin() as conn:
        have = set(conn.scalars(select(UserCredential.user_id)))
        ids = [i for i in conn.scalars(select(User.id)) if i not in have]
        if ids:
            conn.execute(
                insert(UserCredential),
                [
                    {
                        "user_id": i,
                        "password_hash": password_hash(),
                        "must_change": must_change,
                        "changed_at": now,
                        "failed_count": 0,
                        "totp_enabled": False,
                    }
                    for i in ids
                ],
            )


def make_client(db: Database, settings: WebSettings | None = None) -> TestClient:
    return TestClient(create_app(db, settings), base_url=BASE_URL, follow_redirects=False)


@pytest.fixture
def app(db: Database) -> Any:
    give_passwords(db)
    return create_app(db)


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app, base_url=BASE_URL, follow_redirects=False) as c:
        yield c


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def login_form_token(client: TestClient) -> str:
    page = client.get("/login")
    found = _CSRF.search(page.text)
    assert found, "no CSRF token on the login page"
    return found.group(1)


def login(client: TestClient, name: str, password: str = TEST_PASSWORD) -> TestClient:
    """Log ``client`` in as ``name`` (asserts it worked)."""
    token = login_form_token(client)
    response = client.post(
        "/login", data={"name": name, "password": password, "csrf_token": token, "next": "/"}
    )
    assert response.status_code == 303, (
        f"login of {name} failed: {response.status_code} {response.text[:500]}"
    )
    return client


def csrf(client: TestClient) -> str:
    """The CSRF token of the client's session."""
    page = client.get("/password")
    found = _META.search(page.text)
    assert found, f"no CSRF token for this session (status {page.status_code})"
    return found.group(1)


def post(client: TestClient, url: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
    """POST ``data`` to ``url`` with the session's CSRF token."""
    return client.post(url, data={**(data or {}), "csrf_token": csrf(client)}, **kw)


@contextmanager
def count_statements(db: Database) -> Iterator[list[str]]:
    """The SQL statements run on ``db``'s engine inside the block."""
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", before)


@dataclass
class WebDemo:
    backend: str
    url: str
    db: Database


@pytest.fixture(scope="session", params=BACKENDS)
def web_demo(request: pytest.FixtureRequest, templates: Templates) -> Iterator[WebDemo]:
    """A 40-family demo trial per backend, built once per run (the first worker that needs it
    builds it, ``Templates.built_once``): READ in place, never copied; its writes are only the
    sessions and login events of the tests' logins."""
    chosen = request.config.getoption("--backend")
    if chosen not in ("all", request.param):
        pytest.skip(f"--backend {chosen}")
    pg = request.getfixturevalue("pg_server") if request.param == "postgresql" else None

    def build(url: str) -> None:
        demo.build_demo(url, default_definition(), 40, DEMO_SEED, as_of=DEMO_AS_OF)

    ref, _ = templates.built_once(request.param, pg, "web_demo", None, build)
    url = pg.url_for(ref) if pg is not None else f"sqlite:///{ref}"
    db = Database(url)
    yield WebDemo(request.param, url, db)
    db.dispose()


def demo_login(web_demo: WebDemo, name: str) -> TestClient:
    """A client on the demo trial logged in as ``name`` (demo password)."""
    client = make_client(web_demo.db)
    return login(client, name, demo.DEMO_PASSWORD)


LoginFn = Callable[[TestClient, str], TestClient]
