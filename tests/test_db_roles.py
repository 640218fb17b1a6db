"""PostgreSQL roles from `noim db roles`: the application role cannot alter history, noim
still works as it, the read-only role writes nothing (issue 11, point 10)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

import noim.db.models  # noqa: F401  (register every table)
from noim.db import roles
from noim.db.base import Base
from noim.db.session import Database
from noim.services import anchors, audit, freezes, users
from noim.services.imports import run_import
from tests.conftest import Actors
from tests.factories import family_with_children, small_trial
from tests.test_cli import run
from tests.test_import_families import GOOD

pytestmark = [
    pytest.mark.postgresql_only,
    # cluster-wide roles: created, granted and dropped by one worker at a time
    pytest.mark.xdist_group("pg_cluster_roles"),
]

PASSWORD = "noim-roles-test"
#: tables whose rows are never changed once written
HISTORY = (
    "audit_log",
    "allocations",
    "allocation_list",
    "data_freezes",
    "data_freeze_datasets",
    "masking_key",
    "auth_events",
)


@dataclass
class Roles:
    names: roles.RoleNames
    urls: dict[str, str]


def _as(url: str, role: str) -> str:
    return make_url(url).set(username=role, password=PASSWORD).render_as_string(hide_password=False)


@pytest.fixture
def pg_roles(db_url: str) -> Iterator[Roles]:
    """The three roles, made with unique names by the test role (CREATEROLE) and set up by
    the SQL `noim db roles` prints; dropped after the test."""
    suffix = uuid.uuid4().hex[:8]
    names = roles.RoleNames(f"noim_o_{suffix}", f"noim_a_{suffix}", f"noim_r_{suffix}")
    database = make_url(db_url).database
    assert database is not None
    admin = create_engine(db_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for name in (names.owner, names.app, names.readonly):
                conn.exec_driver_sql(f"CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}'")
            conn.exec_driver_sql(f"GRANT {names.owner} TO CURRENT_USER")  # as a DBA would be
            for _ in range(2):  # the scripts can be run again
                conn.exec_driver_sql(roles.cluster_script(names, database))
                conn.exec_driver_sql(roles.database_script(names))
        yield Roles(
            names,
            {
                "owner": _as(db_url, names.owner),
                "app": _as(db_url, names.app),
                "readonly": _as(db_url, names.readonly),
            },
        )
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"REASSIGN OWNED BY {names.owner} TO CURRENT_USER")
            for name in (names.owner, names.app, names.readonly):
                conn.exec_driver_sql(f"GRANT {name} TO CURRENT_USER")  # to drop what it holds
                conn.exec_driver_sql(f"DROP OWNED BY {name}")
                conn.exec_driver_sql(f"DROP ROLE {name}")
        admin.dispose()


def _refused(engine: Engine, sql: str) -> str:
    """Run ``sql`` in its own transaction; return the SQLSTATE it was refused with."""
    with pytest.raises(DBAPIError) as caught, engine.begin() as conn:
        conn.exec_driver_sql(sql)
    return str(caught.value.orig.sqlstate)  # type: ignore[union-attr]


def _engine(url: str) -> Engine:
    return create_engine(url, poolclass=NullPool)


def test_the_application_role_cannot_alter_history(pg_roles: Roles) -> None:
    app = _engine(pg_roles.urls["app"])
    try:
        with app.begin() as conn:  # it reads the trail and moves the head on
            assert conn.exec_driver_sql("SELECT count(*) FROM audit_log").scalar_one() > 0
            conn.exec_driver_sql("SELECT last_seq FROM audit_head FOR UPDATE").scalar_one()
        refused = {}
        for table in HISTORY:
            column = "id" if table != "audit_log" else "seq"
            refused[f"update {table}"] = _refused(app, f"UPDATE {table} SET {column} = {column}")
            refused[f"delete {table}"] = _refused(app, f"DELETE FROM {table}")
            refused[f"truncate {table}"] = _refused(app, f"TRUNCATE {table}")
        for sql in (
            "DELETE FROM children",
            "TRUNCATE children CASCADE",
            "ALTER TABLE audit_log DISABLE TRIGGER ALL",
            "DROP TRIGGER noim_no_update ON audit_log",
            "DROP TABLE audit_log CASCADE",
            "ALTER TABLE children ADD COLUMN note text",
            "CREATE TABLE audit_log_copy (seq integer)",
            "CREATE FUNCTION noim_refuse_change() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RETURN NEW; END $$",
            "SET session_replication_role = replica",
            "UPDATE trial SET title = 'another trial'",
            "UPDATE alembic_version SET version_num = '0000'",
            "SELECT setval(pg_get_serial_sequence('families', 'id'), 1)",
        ):
            refused[sql] = _refused(app, sql)
    finally:
        app.dispose()
    # 42501: insufficient privilege (not being the owner included)
    assert all(state == "42501" for state in refused.values()), refused


def test_noim_works_as_the_application_role(pg_roles: Roles, tmp_path: Path) -> None:
    db = Database(pg_roles.urls["app"])
    try:
        actors = Actors(db)
        trial = small_trial(db, actors, n_families=6)  # randomise, assess, place, safety...
        assert len(trial.arms) == 6
        users.add_user(db, actors["admin"], "newcoord", "coordinator", ("GLA",))
        f = tmp_path / "families.csv"
        f.write_text(GOOD, encoding="utf-8")
        assert run_import(db, actors["admin"], "families", f).written
        info = freezes.create_freeze(db, actors["datamanager"], label="as the app role")
        assert freezes.verify_freeze(db, actors["datamanager"], info.id)
        anchor = anchors.take(db, actors["datamanager"])
        result = audit.verify(db, actors["datamanager"], anchor=anchor)
        assert result.ok, (result.chain.problem, result.data and result.data.problems[:3])
    finally:
        db.dispose()


def test_the_read_only_role_reads_and_writes_nothing(pg_roles: Roles) -> None:
    ro = _engine(pg_roles.urls["readonly"])
    try:
        with ro.begin() as conn:
            tables = [t.name for t in Base.metadata.sorted_tables] + ["alembic_version"]
            for table in tables:
                conn.exec_driver_sql(f"SELECT * FROM {table} LIMIT 1").all()
        # read-only transactions by default, and no privilege even when asked for a write
        assert _refused(ro, "UPDATE users SET display_name = 'x'") == "25006"
        for sql in (
            "UPDATE users SET display_name = 'x'",
            "INSERT INTO audit_head (id, last_seq, last_hash) VALUES (2, 0, '')",
            "DELETE FROM audit_log",
            "SELECT nextval(pg_get_serial_sequence('families', 'id'))",
        ):
            assert _refused(ro, "SET TRANSACTION READ WRITE; " + sql) == "42501", sql
    finally:
        ro.dispose()


def test_the_roles_command_prints_grants_for_every_table(db_url: str) -> None:
    result = run(
        "--database", db_url, "db", "roles", "--owner", "own", "--app", "appl", "--readonly", "bak"
    )
    assert result.exit_code == 0, result.output
    out = result.output
    database = make_url(db_url).database
    assert f'ALTER DATABASE "{database}" OWNER TO "own";' in out
    grants = roles.table_privileges()
    for table in Base.metadata.sorted_tables:
        assert f'ALTER TABLE "public"."{table.name}" OWNER TO "own";' in out
    assert set(grants.append_only) == set(HISTORY)
    assert not {"audit_head", *HISTORY} & set(grants.read_write)
    # DELETE only on the identity records' audit keys, which an erasure on request deletes
    erasure = 'GRANT SELECT, INSERT, DELETE ON TABLE\n    "public"."identity_keys"\n    TO "appl";'
    assert erasure in out and grants.deletable == ["identity_keys"]
    rest = (
        out.replace("never DELETE", "")
        .replace(erasure, "")
        .replace("erasure on request deletes", "")
    )
    assert "DELETE" not in rest and "TRUNCATE" not in out.replace("or TRUNCATE", "")
    refused = run("--database", db_url, "db", "roles", "--app", "x;drop")
    assert refused.exit_code == 1 and "role name 'x;drop'" in refused.stderr
    sqlite = run("--database", "sqlite:///noim.db", "db", "roles")
    assert sqlite.exit_code == 1 and "roles are for a PostgreSQL database" in sqlite.stderr


def test_the_application_role_erases_identities_but_deletes_nothing_else(
    pg_roles: Roles,
) -> None:
    """Erasure on request runs as the application role: it empties the details (audited)
    and deletes the record's audit key, the one delete it may make."""
    from noim.services import families, identities

    db = Database(pg_roles.urls["app"])
    try:
        coord = users.resolve_actor(db, "coord_gla")
        child = family_with_children(db, coord).children[0].trial_id
        families.set_child_identity(db, coord, child, given_name="Zebedee")
        erased = identities.erase(db, coord, "child", child, "requested by the carer")
        assert erased.fields and audit.verify(db, users.resolve_actor(db, "datamanager")).ok
    finally:
        db.dispose()
