"""``noim demo``: build a synthetic trial and print a summary."""

from __future__ import annotations

import click

from noim.cli.admin import print_definition
from noim.cli.common import noim_cli, print_table
from noim.config import Settings
from noim.db import migrate
from noim.db.session import Database
from noim.domain.trialdef import load_definition
from noim.services import demo, users

DEFAULT_DEMO_DATABASE = "sqlite:///demo/noim.db"


@noim_cli.command("demo")
@click.option(
    "--database",
    "database_opt",
    metavar="URL",
    default=DEFAULT_DEMO_DATABASE,
    show_default=True,
    help="Where to build the demonstration trial (created when missing).",
)
@click.option(
    "--trial",
    "trial_file",
    default="nim",
    show_default=True,
    help="Trial definition file or built-in name.",
)
@click.option(
    "--families",
    "n_families",
    type=click.IntRange(0, 100_000),
    default=12,
    show_default=True,
    help="Number of synthetic families.",
)
@click.option(
    "--seed", type=int, default=2026, show_default=True, help="Seed of the random generator."
)
def demo_command(database_opt: str, trial_file: str, n_families: int, seed: int) -> None:
    """Build a synthetic trial through the real services and print a summary."""
    definition = load_definition(trial_file)
    url = Settings.resolve(database=database_opt).database_url
    result = demo.build_demo(url, definition, n_families=n_families, seed=seed)
    click.echo(
        f"Demonstration trial in {result.database_url}: {result.families} families, "
        f"{result.children} children\n"
    )
    print_definition(definition)
    db = Database(url)
    try:
        admin = users.resolve_actor(db, demo.DEMO_ADMIN)
        print_table(
            "Users (act as one with --user NAME)",
            ["name", "role", "sites"],
            [(u.name, u.role, ", ".join(u.sites) or "all") for u in users.list_users(db, admin)],
        )
        counts = migrate.table_counts(db.engine)
    finally:
        db.dispose()
    print_table(
        "Tables with rows", ["table", "rows"], [(k, v) for k, v in sorted(counts.items()) if v]
    )
    empty = [k for k, v in sorted(counts.items()) if not v]
    click.echo(f"Empty so far ({len(empty)}): {', '.join(empty)}")
