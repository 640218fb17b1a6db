"""Alembic, driven from noim: upgrade, downgrade, current revision, drift check, gate.

The Alembic environment and revisions live in ``schema/`` in a checkout and in
``noim/_schema`` inside an installed wheel; ``script_location()`` finds either.
The gate every command passes, ``require_current``, lives in ``noim.db.revisions``
(it needs no Alembic) and is re-exported here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import Connection

from noim.config import DATABASE_ENV, normalise_url
from noim.db import data_loss, revisions
from noim.db.base import Base, UTCDateTime
from noim.db.revisions import VERSION_TABLE, newer_than_this_noim

# the gate every command passes, which needs no Alembic
from noim.db.revisions import require_current as require_current
from noim.db.revisions import script_location as script_location
from noim.domain.exceptions import NotInitialised


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location()))
    cfg.set_main_option("path_separator", "os")
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def url_for_alembic(config: Config) -> str:
    """``NOIM_DATABASE_URL`` when set, else the URL in the Alembic config."""
    url = os.environ.get(DATABASE_ENV) or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(f"no database: set {DATABASE_ENV} or sqlalchemy.url in alembic.ini")
    return normalise_url(url)


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """What autogenerate compares: everything of noim's, not Alembic's own table."""
    return not (type_ == "table" and name == VERSION_TABLE)


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render noim's column types as plain SQLAlchemy types in revision files."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def configure_context(context: Any, connection: Connection) -> None:
    """The one place Alembic's migration context is configured (used by schema/env.py).

    ``transactional_ddl``: SQLite runs DDL inside a transaction too (noim's connections let
    SQLAlchemy issue ``BEGIN``, ``noim.db.session.make_engine``), so one command's revisions
    run in one transaction on both backends: a step that fails (or a downgrade that refuses
    to drop data) leaves the database as it was before the command, not half-migrated.
    """
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        transactional_ddl=True,
        compare_type=True,
        include_object=include_object,
        render_item=render_item,
    )


@contextmanager
def migration_connection(url: str) -> Iterator[Connection]:
    """A connection for running migrations (SQLite: foreign keys off while tables are rebuilt)."""
    from noim.db.session import make_engine

    engine = make_engine(url, null_pool=True)
    try:
        with engine.connect() as conn:
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:
                conn.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")  # type: ignore[union-attr]
            yield conn
            if conn.in_transaction():
                conn.commit()
            if sqlite:
                bad = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                conn.rollback()
                if bad:
                    raise RuntimeError(f"foreign key check failed after migration: {bad[:5]}")
    finally:
        engine.dispose()


def _run(url: str, fn: Any, *args: Any, allow_data_loss: bool = False) -> None:
    cfg = alembic_config(url)
    with migration_connection(url) as conn:
        require_known(conn)
        cfg.attributes["connection"] = conn
        cfg.attributes[data_loss.OVERRIDE] = allow_data_loss
        fn(cfg, *args)


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` up to ``revision`` (default: this noim's head).

    Refuses (``SchemaOutOfDate``) a database at a revision this noim does not know.
    """
    _run(url, command.upgrade, revision)


def downgrade(url: str, revision: str, *, allow_data_loss: bool = False) -> None:
    """Take the database at ``url`` down to ``revision`` (or ``-1``, ``base``).

    A revision whose downgrade would drop a table or column holding rows refuses
    (``noim.db.data_loss.DataLossRefused``) unless ``allow_data_loss`` is given.
    """
    _run(url, command.downgrade, revision, allow_data_loss=allow_data_loss)


def script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def heads() -> list[str]:
    return list(script().get_heads())


def head() -> str:
    """This noim's head revision (``noim.db.revisions``; a test checks it is Alembic's)."""
    return revisions.head()


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def known_revisions() -> set[str]:
    """Every revision this noim's migrations define (``noim.db.revisions``)."""
    return revisions.known()


def require_known(conn: Connection) -> None:
    """Refuse a database whose revision this noim does not know (written by a newer noim).

    Ends the read transaction it opens, so a migration starts its own.
    """
    try:
        if not inspect(conn).has_table(VERSION_TABLE):
            return
        current = current_revision(conn)
    finally:
        conn.rollback()
    if current is not None and current not in known_revisions():
        raise newer_than_this_noim(conn.engine.url.render_as_string(hide_password=True), current)


def schema_diffs(conn: Connection) -> list[Any]:
    """Differences between the models and the database (what ``alembic check`` reports)."""
    ctx = MigrationContext.configure(
        conn,
        opts={"compare_type": True, "include_object": include_object, "render_item": render_item},
    )
    return list(compare_metadata(ctx, Base.metadata))


def status(engine: Engine) -> tuple[str | None, str]:
    """(database revision or None, code head)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None, head()
        return current_revision(conn), head()


def require_upgradable(engine: Engine) -> str:
    """The revision of a database ``noim db upgrade`` can upgrade (or leave as it is).

    ``NotInitialised`` without a noim schema; ``SchemaOutOfDate`` at a revision this noim
    does not know (written by a newer noim).
    """
    where = engine.url.render_as_string(hide_password=True)
    current, _code_head = status(engine)
    if current is None:
        raise NotInitialised(f"database {where} has no noim schema; run `noim init` to create it")
    if current not in known_revisions():
        raise newer_than_this_noim(where, current)
    return current


def table_counts(engine: Engine) -> dict[str, int]:
    """Row count of every noim table."""
    with engine.connect() as conn:
        return {
            name: int(conn.execute(text(f'SELECT COUNT(*) FROM "{name}"')).scalar_one())
            for name in sorted(Base.metadata.tables)
        }
