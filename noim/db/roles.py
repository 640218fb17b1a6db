"""PostgreSQL roles that limit what a leaked application credential can do (``noim db roles``).

Three roles:

* the **owner** owns the schema: every table, sequence and the trigger function that
  protects them.  Only it runs ``noim init`` and ``noim db upgrade`` (DDL), and only an
  owner (or a superuser) can drop a table or disable its triggers;
* the **application** role is what day-to-day noim uses: ``SELECT`` on every table,
  ``INSERT`` where noim writes, ``UPDATE`` only where noim changes rows, never ``DELETE``
  or ``TRUNCATE``, no DDL.  The append-only tables (``noim.db.triggers.APPEND_ONLY``:
  the audit trail, allocations, the sealed list, data freezes and their datasets) get
  ``SELECT, INSERT`` only; the chain's head (``audit_head``) ``SELECT, UPDATE``; the
  trial set-up that only ``noim init`` and ``noim db upgrade`` write (``SET_UP_TABLES``)
  and Alembic's revision ``SELECT`` only;
* the **read-only** role is for backups (``pg_dump``) and reporting: ``SELECT`` only, in
  read-only transactions by default.

The grants are derived from the models (``Base.metadata``), so a table added to noim is
covered when the script is run again after ``noim db upgrade``; until then the default
privileges let both roles read it and the application write nothing to it (fail closed).
"""

from __future__ import annotations

from dataclasses import dataclass

import noim
from noim.db.base import Base
from noim.db.triggers import APPEND_ONLY, DELETABLE

#: written only by ``noim init`` and ``noim db upgrade`` (noim.services.setup), run as the
#: owner.  Not ``sites``: registering a family locks its site's row (``SELECT ... FOR
#: UPDATE``), which PostgreSQL allows only to a role that may update it.
SET_UP_TABLES = frozenset(
    {
        "trial",
        "local_authorities",
        "teams",
        "arms",
        "arm_site_labels",
        "timepoints",
        "timepoint_instruments",
        "roles",
        "decision_types",
        "instruments",
    }
)
#: the audit chain's head: read and moved on by every audited write
HEAD_TABLE = "audit_head"
#: Alembic's record of the schema revision
VERSION_TABLE = "alembic_version"
#: the function the protecting triggers call (noim.db.triggers)
TRIGGER_FUNCTION = "noim_refuse_change()"


@dataclass(frozen=True)
class RoleNames:
    owner: str = "noim_owner"
    app: str = "noim_app"
    readonly: str = "noim_readonly"

    def __post_init__(self) -> None:
        for name in (self.owner, self.app, self.readonly):
            if (
                not name
                or not (name[0].isalpha() or name[0] == "_")
                or not all(c.isalnum() or c == "_" for c in name)
            ):
                raise ValueError(
                    f"role name {name!r}: expected letters, digits and _ (not starting "
                    "with a digit)"
                )
        if len({self.owner, self.app, self.readonly}) != 3:
            raise ValueError("the owner, application and read-only roles must differ")


@dataclass(frozen=True)
class TablePrivileges:
    """What the application role may do on each kind of table."""

    read_write: list[str]
    append_only: list[str]
    read_only: list[str]
    #: not trial data: the identity records' audit keys, deleted to complete an erasure
    deletable: list[str]


def table_privileges() -> TablePrivileges:
    """The application role's privileges on every noim table, from the models."""
    import noim.db.models  # noqa: F401  (register every table)

    read_write, append_only, read_only, deletable = [], [], [], []
    for table in Base.metadata.sorted_tables:
        if table.name == HEAD_TABLE:
            continue
        if table.name in DELETABLE:
            deletable.append(table.name)
        elif table.name in APPEND_ONLY:
            append_only.append(table.name)
        elif table.name in SET_UP_TABLES:
            read_only.append(table.name)
        else:
            read_write.append(table.name)
    return TablePrivileges(read_write, append_only, [*read_only, VERSION_TABLE], deletable)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def cluster_script(roles: RoleNames, database: str) -> str:
    """Part 1, as a superuser (or a role with CREATEROLE): the roles and who may connect."""
    owner, app, ro = (_quote(n) for n in (roles.owner, roles.app, roles.readonly))
    db = _quote(database)
    lines = [
        f"-- noim {noim.__version__}: database roles, part 1 of 2.",
        "-- Run as a superuser or a role with CREATEROLE (e.g. psql -d postgres); safe to run",
        "-- again.  Then give each role a password: \\password <role> in psql.",
        "DO $$",
        "BEGIN",
    ]
    for name in (roles.owner, roles.app, roles.readonly):
        lines.append(
            f"    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {_literal(name)}) THEN "
            f"CREATE ROLE {_quote(name)} LOGIN; END IF;"
        )
    lines += [
        "END",
        "$$;",
        "-- the application and read-only roles create no databases or roles (nor are they",
        "-- superusers, replication or BYPASSRLS roles: new roles are not; check existing ones",
        "-- with \\du in psql)",
        f"ALTER ROLE {app} NOCREATEDB NOCREATEROLE;",
        f"ALTER ROLE {ro} NOCREATEDB NOCREATEROLE;",
        f"ALTER ROLE {ro} SET default_transaction_read_only = on;",
        f"-- a new database: CREATE DATABASE {db} OWNER {owner};  an existing one:",
        f"ALTER DATABASE {db} OWNER TO {owner};",
        f"REVOKE ALL ON DATABASE {db} FROM PUBLIC;",
        f"GRANT CONNECT ON DATABASE {db} TO {app}, {ro};",
        "",
    ]
    return "\n".join(lines)


def database_script(roles: RoleNames, schema: str = "public") -> str:
    """Part 2, connected to the noim database as the owner (or a superuser), after
    ``noim init`` and again after every ``noim db upgrade``: ownership and privileges.
    (PostgreSQL 13 and 14 give the ``public`` schema to the superuser: run it as one.)"""
    owner, app, ro = (_quote(n) for n in (roles.owner, roles.app, roles.readonly))
    sch = _quote(schema)
    grants = table_privileges()
    tables = [t.name for t in Base.metadata.sorted_tables] + [VERSION_TABLE]
    lines = [
        f"-- noim {noim.__version__}: database roles, part 2 of 2.",
        "-- Run connected to the noim database as the owner (or a superuser), after",
        "-- `noim init` and again after every `noim db upgrade`; safe to run again.",
        "BEGIN;",
        "-- the owner owns the schema and every noim object (tables with their sequences,",
        "-- the function the protecting triggers call); only it can change or drop them",
        f"ALTER SCHEMA {sch} OWNER TO {owner};",
    ]
    lines += [f"ALTER TABLE {sch}.{_quote(t)} OWNER TO {owner};" for t in tables]
    lines += [
        f"ALTER FUNCTION {sch}.{TRIGGER_FUNCTION} OWNER TO {owner};",
        "-- nobody else creates objects here",
        f"REVOKE ALL ON SCHEMA {sch} FROM PUBLIC;",
        f"GRANT USAGE ON SCHEMA {sch} TO {app}, {ro};",
        "-- start from nothing, then grant exactly what each role needs",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {sch} FROM PUBLIC, {app}, {ro};",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {sch} FROM PUBLIC, {app}, {ro};",
        "-- read-only role (backups, reports): read everything",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {sch} TO {ro};",
        f"GRANT SELECT ON ALL SEQUENCES IN SCHEMA {sch} TO {ro};",
        "-- application role: the rows noim changes (never DELETE or TRUNCATE: trial data",
        "-- is voided, never deleted)",
        _grant("SELECT, INSERT, UPDATE", grants.read_write, sch, app),
        "-- written once, never changed: the audit trail, allocations, the sealed list, freezes",
        _grant("SELECT, INSERT", grants.append_only, sch, app),
        "-- the identity records' audit keys (no trial data): an erasure on request deletes one",
        _grant("SELECT, INSERT, DELETE", grants.deletable, sch, app),
        "-- the audit chain's head: locked and moved on by every audited write",
        _grant("SELECT, UPDATE", [HEAD_TABLE], sch, app),
        "-- trial set-up (written by `noim init` / `noim db upgrade` as the owner) and the",
        "-- schema revision: read only",
        _grant("SELECT", grants.read_only, sch, app),
        "-- new keys for bulk inserts (nextval), never setval",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {sch} TO {app};",
        "-- objects a later migration creates: readable by both roles; the application",
        "-- writes to them once this script has been run again",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {sch} "
        f"GRANT SELECT ON TABLES TO {app}, {ro};",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {sch} "
        f"GRANT USAGE, SELECT ON SEQUENCES TO {app};",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {sch} "
        f"GRANT SELECT ON SEQUENCES TO {ro};",
        "COMMIT;",
        "",
    ]
    return "\n".join(lines)


def _grant(privileges: str, tables: list[str], schema: str, role: str) -> str:
    listed = ",\n    ".join(f"{schema}.{_quote(t)}" for t in tables)
    return f"GRANT {privileges} ON TABLE\n    {listed}\n    TO {role};"


def script(roles: RoleNames, database: str, schema: str = "public") -> str:
    """Both parts, as ``noim db roles`` prints them."""
    return cluster_script(roles, database) + "\n" + database_script(roles, schema)
