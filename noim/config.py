"""Settings: which database and which user.  Resolved once, passed explicitly.

Nothing is read at import time: ``Settings.resolve()`` looks at its arguments,
then the environment (``NOIM_DATABASE_URL``, ``NOIM_USER``), then defaults (a
SQLite file ``noim.db`` in the current folder; the operating-system user).
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DATABASE_ENV = "NOIM_DATABASE_URL"
USER_ENV = "NOIM_USER"
DEFAULT_DATABASE = "sqlite:///noim.db"


def normalise_url(url: str) -> str:
    """Accept a SQLAlchemy URL or a plain file path; use psycopg 3 for PostgreSQL.

    ``demo/noim.db`` -> ``sqlite:///demo/noim.db``;
    ``postgresql://u@h/db`` -> ``postgresql+psycopg://u@h/db``.
    """
    url = url.strip()
    if not url:
        raise ValueError(
            "database URL is empty; expected e.g. sqlite:///noim.db or postgresql://host/db"
        )
    if "://" not in url:
        return f"sqlite:///{url}"
    scheme, rest = url.split("://", 1)
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    return url


def os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers)
        return "admin"


@dataclass(frozen=True)
class Settings:
    database_url: str
    user_name: str

    @classmethod
    def resolve(
        cls,
        database: str | None = None,
        user: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        env = os.environ if environ is None else environ
        url = database or env.get(DATABASE_ENV) or DEFAULT_DATABASE
        name = user or env.get(USER_ENV) or os_user()
        return cls(database_url=normalise_url(url), user_name=name)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def sqlite_path(self) -> Path | None:
        """The database file of a SQLite URL (None for in-memory or other backends)."""
        if not self.is_sqlite:
            return None
        path = self.database_url.split(":///", 1)[1] if ":///" in self.database_url else ""
        if not path or path == ":memory:":
            return None
        return Path(path)
