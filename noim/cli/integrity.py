"""Commands that protect the trial's history: ``noim audit anchor`` and ``noim db roles``."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy.engine import make_url

from noim.cli.common import CliState, fail, json_option, pass_state
from noim.config import Settings
from noim.db import roles
from noim.services import anchors


@click.command("anchor")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write the anchor to FILE (never overwritten) instead of standard output.",
)
@json_option
@pass_state
def audit_anchor(state: CliState, out: Path | None, as_json: bool) -> None:
    """Write the audit chain's head (row, hash, time) as JSON, to keep outside the database.

    `noim audit verify --anchor FILE` later proves that no history up to that row was
    rewritten, even with every hash recomputed.  The chain must verify first.
    """
    text = anchors.take(state.db(), state.actor()).to_json()
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        with out.open("x", encoding="utf-8") as f:
            f.write(text)
    except FileExistsError:
        fail(f"{out} exists; anchors are never overwritten: choose a new file name")
    if as_json:
        click.echo(text, nl=False)
    else:
        anchor = anchors.parse(text, str(out))
        click.echo(
            f"Anchored audit row {anchor.seq} (hash {anchor.hash[:16]}...) in {out}; "
            "keep it outside the database"
        )


@click.command("roles")
@click.option(
    "--owner",
    default="noim_owner",
    show_default=True,
    help="Role that owns the schema and runs migrations.",
)
@click.option(
    "--app", default="noim_app", show_default=True, help="Role day-to-day noim connects as."
)
@click.option(
    "--readonly",
    default="noim_readonly",
    show_default=True,
    help="Read-only role for backups and reports.",
)
@click.option(
    "--database",
    "database_opt",
    metavar="URL",
    help="The PostgreSQL database (same as the global --database; only its name is used).",
)
@click.option(
    "--part",
    type=click.Choice(["all", "cluster", "database"]),
    default="all",
    show_default=True,
    help="cluster: the roles (run as a superuser); database: ownership and grants (run in "
    "the noim database as the owner, after `noim init` and every `noim db upgrade`).",
)
@pass_state
def db_roles(
    state: CliState, owner: str, app: str, readonly: str, database_opt: str | None, part: str
) -> None:
    """Print the SQL that sets up PostgreSQL roles limiting what a leaked application
    credential can do: an owner, an application role that cannot delete, truncate, alter
    history or run DDL, and a read-only role (see docs/operations.md and docs/security.md)."""
    url = make_url(Settings.resolve(database=database_opt or state.database).database_url)
    if url.get_backend_name() != "postgresql" or not url.database:
        fail(
            f"{url.render_as_string(hide_password=True)}: roles are for a PostgreSQL database "
            "(postgresql://.../NAME); protect a SQLite file with file permissions instead"
        )
    try:
        names = roles.RoleNames(owner=owner, app=app, readonly=readonly)
    except ValueError as exc:
        fail(str(exc))
    if part in ("all", "cluster"):
        click.echo(roles.cluster_script(names, url.database))
    if part in ("all", "database"):
        click.echo(roles.database_script(names))
